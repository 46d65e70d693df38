package imagediff

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// CompareFiles compares the file systems two images unpack to, whatever
// their layers: every path, with its header (type, mode, owner, times,
// link target, extended attributes) and content. It returns the first
// path, in byte order, that one image lacks or that differs, with Layer -1,
// or nil when the file systems are the same.
func CompareFiles(a, b v1.Image) (*Difference, error) {
	fa, err := files(a)
	if err != nil {
		return nil, fmt.Errorf("reading the first image's files: %w", err)
	}
	fb, err := files(b)
	if err != nil {
		return nil, fmt.Errorf("reading the second image's files: %w", err)
	}
	names := make([]string, 0, len(fa)+len(fb))
	for n := range fa {
		names = append(names, n)
	}
	for n := range fb {
		if _, ok := fa[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		da, inA := fa[n]
		db, inB := fb[n]
		switch {
		case !inA:
			return &Difference{Layer: -1, Path: n, A: "absent", B: db}, nil
		case !inB:
			return &Difference{Layer: -1, Path: n, A: da, B: "absent"}, nil
		case da != db:
			return &Difference{Layer: -1, Path: n, A: da, B: db}, nil
		}
	}
	return nil, nil
}

// files describes every path of an image's flattened file system.
func files(img v1.Image) (map[string]string, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]string{}
	for {
		e, err := next(tr)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		n := strings.TrimSuffix(strings.TrimPrefix(e.name, "./"), "/")
		out[n] = e.desc
	}
}
