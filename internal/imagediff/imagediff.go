// Package imagediff compares two container images layer by layer and file
// by file, and names the first place where they differ: the tool behind the
// reproducible-rebuild tests, so a digest mismatch comes with its reason.
package imagediff

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Difference is the first place where two images differ.
type Difference struct {
	// Layer is the index of the first layer that differs, or -1 when the
	// layers are the same and the difference is in the config or manifest.
	Layer int
	// Path is the file (tar entry name) that differs first, or the config
	// or manifest field (a dotted path such as "config.Env") when Layer is
	// -1. Empty when the difference has no single path (a missing layer).
	Path string
	// A and B describe what each image has there.
	A, B string
}

// String describes the difference in one line.
func (d *Difference) String() string {
	where := "config/manifest"
	if d.Layer >= 0 {
		where = fmt.Sprintf("layer %d", d.Layer)
	}
	if d.Path != "" {
		where += " at " + d.Path
	}
	return fmt.Sprintf("%s: %s vs %s", where, d.A, d.B)
}

// Compare walks both images' layers in order and returns the first
// difference: the first layer whose digest differs and, inside it, the
// first tar entry whose name, header (type, mode, owner, times, size, link
// target, extended attributes) or content differs. When every layer is the
// same it compares the configs and then the manifests field by field. It
// returns nil when the images are identical.
func Compare(a, b v1.Image) (*Difference, error) {
	la, err := a.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the first image's layers: %w", err)
	}
	lb, err := b.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the second image's layers: %w", err)
	}
	for i := 0; i < len(la) || i < len(lb); i++ {
		if i >= len(la) || i >= len(lb) {
			return &Difference{Layer: i, A: layerCount(len(la)), B: layerCount(len(lb))}, nil
		}
		da, err := la[i].DiffID()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		db, err := lb[i].DiffID()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if da == db {
			continue
		}
		d, err := compareLayer(la[i], lb[i])
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		if d == nil {
			d = &Difference{A: "diff_id " + da.String(), B: "diff_id " + db.String()}
		}
		d.Layer = i
		return d, nil
	}
	ca, err := a.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the first image's config: %w", err)
	}
	cb, err := b.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the second image's config: %w", err)
	}
	if d, err := compareJSON("config", ca, cb); d != nil || err != nil {
		return d, err
	}
	ma, err := a.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the first image's manifest: %w", err)
	}
	mb, err := b.RawManifest()
	if err != nil {
		return nil, fmt.Errorf("reading the second image's manifest: %w", err)
	}
	return compareJSON("manifest", ma, mb)
}

func layerCount(n int) string {
	if n == 1 {
		return "1 layer"
	}
	return fmt.Sprintf("%d layers", n)
}

// entry is one tar entry: its name and everything else that ends up in the
// layer's bytes.
type entry struct {
	name string
	desc string
}

// compareLayer reads two layers' uncompressed tars side by side and returns
// the first entry that differs, or nil when they differ only outside the
// entries (padding, end of archive).
func compareLayer(a, b v1.Layer) (*Difference, error) {
	ra, err := a.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	rb, err := b.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rb.Close()
	ta, tb := tar.NewReader(ra), tar.NewReader(rb)
	for {
		ea, errA := next(ta)
		eb, errB := next(tb)
		switch {
		case errA != nil && !errors.Is(errA, io.EOF):
			return nil, errA
		case errB != nil && !errors.Is(errB, io.EOF):
			return nil, errB
		case errA != nil && errB != nil:
			return nil, nil
		case errA != nil:
			return &Difference{Path: eb.name, A: "no more entries", B: eb.desc}, nil
		case errB != nil:
			return &Difference{Path: ea.name, A: ea.desc, B: "no more entries"}, nil
		case ea.name != eb.name:
			return &Difference{Path: ea.name, A: "entry " + ea.name, B: "entry " + eb.name + " in its place"}, nil
		case ea.desc != eb.desc:
			return &Difference{Path: ea.name, A: ea.desc, B: eb.desc}, nil
		}
	}
}

// next reads the next tar entry and describes it.
func next(tr *tar.Reader) (entry, error) {
	h, err := tr.Next()
	if err != nil {
		return entry{}, err
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, tr); err != nil {
		return entry{}, fmt.Errorf("reading %s: %w", h.Name, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "type=%c mode=%o uid=%d gid=%d", h.Typeflag, h.Mode, h.Uid, h.Gid)
	if h.Uname != "" || h.Gname != "" {
		fmt.Fprintf(&b, " owner=%s:%s", h.Uname, h.Gname)
	}
	fmt.Fprintf(&b, " mtime=%d", h.ModTime.Unix())
	if !h.AccessTime.IsZero() {
		fmt.Fprintf(&b, " atime=%d", h.AccessTime.Unix())
	}
	if !h.ChangeTime.IsZero() {
		fmt.Fprintf(&b, " ctime=%d", h.ChangeTime.Unix())
	}
	if h.Linkname != "" {
		fmt.Fprintf(&b, " link=%s", h.Linkname)
	}
	if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
		fmt.Fprintf(&b, " dev=%d,%d", h.Devmajor, h.Devminor)
	}
	keys := make([]string, 0, len(h.PAXRecords))
	for k := range h.PAXRecords {
		if k != "path" && k != "linkpath" && k != "mtime" && k != "atime" && k != "ctime" && k != "size" && k != "uid" && k != "gid" && k != "uname" && k != "gname" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, h.PAXRecords[k])
	}
	fmt.Fprintf(&b, " size=%d sha256=%s", h.Size, hex.EncodeToString(sum.Sum(nil))[:16])
	return entry{name: h.Name, desc: b.String()}, nil
}

// compareJSON returns the first field where two JSON documents differ, in
// key order, or nil when they are the same bytes.
func compareJSON(what string, a, b []byte) (*Difference, error) {
	if bytes.Equal(a, b) {
		return nil, nil
	}
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		return nil, fmt.Errorf("reading the first image's %s: %w", what, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		return nil, fmt.Errorf("reading the second image's %s: %w", what, err)
	}
	if d := firstDiff(what, va, vb); d != nil {
		return d, nil
	}
	// Same values, different bytes: key order or formatting.
	return &Difference{Layer: -1, Path: what, A: fmt.Sprintf("%d bytes", len(a)), B: fmt.Sprintf("%d bytes (same fields, other encoding)", len(b))}, nil
}

func firstDiff(path string, a, b any) *Difference {
	if reflect.DeepEqual(a, b) {
		return nil
	}
	ma, okA := a.(map[string]any)
	mb, okB := b.(map[string]any)
	if okA && okB {
		keys := map[string]bool{}
		for k := range ma {
			keys[k] = true
		}
		for k := range mb {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			va, inA := ma[k]
			vb, inB := mb[k]
			switch {
			case !inA:
				return &Difference{Layer: -1, Path: path + "." + k, A: "absent", B: short(vb)}
			case !inB:
				return &Difference{Layer: -1, Path: path + "." + k, A: short(va), B: "absent"}
			}
			if d := firstDiff(path+"."+k, va, vb); d != nil {
				return d
			}
		}
		return nil
	}
	sa, okA := a.([]any)
	sb, okB := b.([]any)
	if okA && okB {
		for i := 0; i < len(sa) && i < len(sb); i++ {
			if d := firstDiff(fmt.Sprintf("%s[%d]", path, i), sa[i], sb[i]); d != nil {
				return d
			}
		}
		return &Difference{Layer: -1, Path: path, A: fmt.Sprintf("%d items", len(sa)), B: fmt.Sprintf("%d items", len(sb))}
	}
	return &Difference{Layer: -1, Path: path, A: short(a), B: short(b)}
}

// short renders a JSON value, cut to a readable length.
func short(v any) string {
	dt, _ := json.Marshal(v)
	s := string(dt)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
