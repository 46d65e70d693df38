package imagediff

import (
	"archive/tar"
	"bytes"
	"io"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// file is one entry of a test layer.
type file struct {
	name, body string
	mode       int64
	mtime      int64
}

func layer(t *testing.T, files ...file) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: time.Unix(f.mtime, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dt := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(dt)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t *testing.T, base v1.Image, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCompare(t *testing.T) {
	base, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	app := []file{
		{name: "app/", mode: 0o755},
		{name: "app/a.txt", body: "a\n", mode: 0o644},
		{name: "app/b.txt", body: "b\n", mode: 0o644},
		{name: "app/c.txt", body: "c\n", mode: 0o644},
	}
	with := func(i int, change func(*file)) []file {
		out := append([]file{}, app...)
		change(&out[i])
		return out
	}
	same := image(t, base, layer(t, app...))

	for _, tc := range []struct {
		name      string
		other     v1.Image
		layer     int
		path      string
		a, b      string // substrings of the descriptions
		wantEqual bool
	}{
		{name: "identical", other: image(t, base, layer(t, app...)), wantEqual: true},
		{name: "content", other: image(t, base, layer(t, with(2, func(f *file) { f.body = "B\n" })...)), layer: 2, path: "app/b.txt", a: "sha256=", b: "sha256="},
		{name: "mode", other: image(t, base, layer(t, with(1, func(f *file) { f.mode = 0o600 })...)), layer: 2, path: "app/a.txt", a: "mode=644", b: "mode=600"},
		{name: "mtime", other: image(t, base, layer(t, with(3, func(f *file) { f.mtime = 1700000000 })...)), layer: 2, path: "app/c.txt", a: "mtime=0", b: "mtime=1700000000"},
		{name: "extra file", other: image(t, base, layer(t, append(append([]file{}, app...), file{name: "app/d.txt", body: "d", mode: 0o644})...)), layer: 2, path: "app/d.txt", a: "no more entries", b: "size=1"},
		{name: "missing file", other: image(t, base, layer(t, app[0], app[1], app[3])), layer: 2, path: "app/b.txt", a: "entry app/b.txt", b: "entry app/c.txt"},
		{name: "extra layer", other: image(t, base, layer(t, app...), layer(t, app[1])), layer: 3, a: "3 layers", b: "4 layers"},
		{name: "base layer", other: image(t, mustRandom(t), layer(t, app...)), layer: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Compare(same, tc.other)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantEqual {
				if d != nil {
					t.Fatalf("Compare = %v, want no difference", d)
				}
				return
			}
			if d == nil {
				t.Fatal("Compare found no difference")
			}
			if d.Layer != tc.layer || d.Path != tc.path && tc.path != "" || !strings.Contains(d.A, tc.a) || !strings.Contains(d.B, tc.b) {
				t.Errorf("Compare = %+v, want layer %d path %q, A ~ %q, B ~ %q", d, tc.layer, tc.path, tc.a, tc.b)
			}
			t.Log(d)
		})
	}
}

func mustRandom(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestCompareConfig(t *testing.T) {
	base, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	c.Env = []string{"A=1", "B=2"}
	a, err := mutate.Config(base, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Env = []string{"A=1", "B=3"}
	b, err := mutate.Config(base, c)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Compare(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || d.Layer != -1 || d.Path != "config.config.Env[1]" || d.A != `"B=2"` || d.B != `"B=3"` {
		t.Fatalf("Compare = %+v, want config.config.Env[1] \"B=2\" vs \"B=3\"", d)
	}
	if !strings.Contains(d.String(), "config/manifest at config.config.Env[1]") {
		t.Errorf("String() = %q", d.String())
	}

	// Same config and layers, another manifest annotation.
	m := mutate.Annotations(a, map[string]string{"x": "1"}).(v1.Image)
	d, err = Compare(a, m)
	if err != nil {
		t.Fatal(err)
	}
	if d == nil || d.Path != "manifest.annotations" {
		t.Fatalf("Compare = %+v, want manifest.annotations", d)
	}
}
