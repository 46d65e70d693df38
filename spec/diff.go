package spec

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Difference is one hashed input that differs between two images.
type Difference struct {
	// Field is the input's path in the hash document, e.g. "spec.packages".
	Field string `json:"field"`
	// A and B are the input's values in each image ("" when absent).
	A string `json:"a"`
	B string `json:"b"`
	// Detail names what changed inside a list or a file tree, when known.
	Detail string `json:"detail,omitempty"`
}

// Diff names each hashed input that differs between a and b, sorted by
// field. Two images have the same tag when it returns nothing (and their
// tag formats agree).
func Diff(a, b *Image) []Difference {
	fa, fb := map[string]any{}, map[string]any{}
	flatten(fa, "", decodeDoc(a.Document))
	flatten(fb, "", decodeDoc(b.Document))
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []Difference
	for _, k := range sortedKeys(keys) {
		va, vb := fa[k], fb[k]
		sa, sb := show(va), show(vb)
		if sa == sb {
			continue
		}
		d := Difference{Field: k, A: sa, B: sb}
		if la, ok := va.([]any); ok {
			if lb, ok := vb.([]any); ok {
				d.Detail = listDelta(la, lb)
			}
		}
		if strings.HasPrefix(sa, "\"sha256:") && strings.HasPrefix(sb, "\"sha256:") {
			d.Detail = treeDelta(a, b, sa, sb)
		}
		out = append(out, d)
	}
	return out
}

func decodeDoc(doc []byte) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(doc, &m)
	return m
}

// flatten turns nested maps into dotted paths. Lists of objects with a
// "path" key (copy) are keyed by that path so their order does not matter.
func flatten(out map[string]any, prefix string, v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			flatten(out, join(prefix, k), e)
		}
	case []any:
		if len(t) > 0 {
			if _, ok := t[0].(map[string]any); ok {
				for i, e := range t {
					m, _ := e.(map[string]any)
					p, ok := m["path"].(string)
					if !ok {
						// Ordered items (layers, a layer's copy pairs)
						// are keyed by their position.
						p = fmt.Sprint(i)
					}
					flatten(out, fmt.Sprintf("%s[%s]", prefix, p), m)
				}
				return
			}
		}
		out[prefix] = t
	default:
		out[prefix] = t
	}
}

func show(v any) string {
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func listDelta(a, b []any) string {
	in := func(l []any, x any) bool {
		for _, e := range l {
			if show(e) == show(x) {
				return true
			}
		}
		return false
	}
	var parts []string
	for _, e := range a {
		if !in(b, e) {
			parts = append(parts, "-"+show(e))
		}
	}
	for _, e := range b {
		if !in(a, e) {
			parts = append(parts, "+"+show(e))
		}
	}
	if len(parts) == 0 {
		return "same items, different order"
	}
	return strings.Join(parts, " ")
}

// treeDelta names the files that differ between the trees with the given
// digests.
func treeDelta(a, b *Image, da, db string) string {
	ta, tb := findTree(a, strings.Trim(da, `"`)), findTree(b, strings.Trim(db, `"`))
	if ta == nil || tb == nil {
		return ""
	}
	ea := map[string]Entry{}
	for _, e := range ta.Entries {
		ea[e.Path] = e
	}
	seen := map[string]bool{}
	var changed []string
	for _, e := range tb.Entries {
		seen[e.Path] = true
		old, ok := ea[e.Path]
		switch {
		case !ok:
			changed = append(changed, "+"+e.Path)
		case old != e:
			what := "content"
			if old.Mode != e.Mode {
				what = fmt.Sprintf("mode %04o->%04o", old.Mode, e.Mode)
			}
			changed = append(changed, fmt.Sprintf("~%s (%s)", e.Path, what))
		}
	}
	for _, e := range ta.Entries {
		if !seen[e.Path] {
			changed = append(changed, "-"+e.Path)
		}
	}
	sort.Strings(changed)
	if len(changed) > 10 {
		changed = append(changed[:10], fmt.Sprintf("and %d more", len(changed)-10))
	}
	return strings.Join(changed, " ")
}

func findTree(img *Image, digest string) *Tree {
	all := append([]*Tree{img.Requirements, img.Source}, img.Copies...)
	for _, t := range all {
		if t != nil && t.Digest == digest {
			return t
		}
	}
	return nil
}
