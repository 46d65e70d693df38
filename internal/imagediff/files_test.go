package imagediff

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
)

// TestCompareFiles: images whose layers split the same files differently
// are the same; a file missing, added, changed in content, mode or time,
// or deleted by a whiteout is named.
func TestCompareFiles(t *testing.T) {
	a := file{name: "app/a.txt", body: "a\n", mode: 0o644}
	b := file{name: "app/b.txt", body: "b\n", mode: 0o644}
	dir := file{name: "app/", mode: 0o755}
	one := image(t, empty.Image, layer(t, dir, a, b))
	split := image(t, empty.Image, layer(t, dir, a), layer(t, dir, b))
	if d, err := CompareFiles(one, split); err != nil || d != nil {
		t.Fatalf("same files in one layer and in two: %v, %v", d, err)
	}
	for _, c := range []struct {
		name  string
		other []file
		path  string
		want  string
	}{
		{"missing", []file{dir, a}, "app/b.txt", "absent"},
		{"added", []file{dir, a, b, {name: "app/c.txt", body: "c\n", mode: 0o644}}, "app/c.txt", "absent"},
		{"content", []file{dir, a, {name: "app/b.txt", body: "B\n", mode: 0o644}}, "app/b.txt", "sha256="},
		{"mode", []file{dir, a, {name: "app/b.txt", body: "b\n", mode: 0o755}}, "app/b.txt", "mode="},
		{"mtime", []file{dir, a, {name: "app/b.txt", body: "b\n", mode: 0o644, mtime: 5}}, "app/b.txt", "mtime="},
		{"directory mode", []file{{name: "app/", mode: 0o700}, a, b}, "app", "mode=700"},
	} {
		other := image(t, empty.Image, layer(t, c.other...))
		d, err := CompareFiles(one, other)
		if err != nil || d == nil {
			t.Errorf("%s: %v, %v; want a difference", c.name, d, err)
			continue
		}
		if d.Layer != -1 || d.Path != c.path || !strings.Contains(d.A+" "+d.B, c.want) {
			t.Errorf("%s: %v; want %s at %s", c.name, d, c.want, c.path)
		}
	}
	deleted := image(t, empty.Image, layer(t, dir, a, b), layer(t, file{name: "app/.wh.b.txt"}))
	if d, _ := CompareFiles(one, deleted); d == nil || d.Path != "app/b.txt" || d.B != "absent" {
		t.Errorf("a whiteout: %v; want app/b.txt absent", d)
	}
}
