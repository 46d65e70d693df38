package testenv

import (
	"archive/tar"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Pull returns the image at ref from its registry (plain HTTP, as the test
// registries on loopback speak), failing the test when it cannot.
func Pull(t testing.TB, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("fetching %s: %v", ref, err)
	}
	return img
}

// ImageFile returns a file of the image's flattened filesystem (a
// symlink's target for a symlink), and whether it is there. p is relative
// to the root, e.g. "etc/os-release".
func ImageFile(t testing.TB, img v1.Image, p string) (string, bool) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", false
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimLeft(strings.TrimPrefix(h.Name, "./"), "/") != p {
			continue
		}
		if h.Typeflag == tar.TypeSymlink {
			return h.Linkname, true
		}
		dt, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		return string(dt), true
	}
}

// TarEntries calls fn with each entry of a tar stream (an uncompressed
// layer) and its name without a leading "./", failing the test on a
// damaged stream.
func TarEntries(t testing.TB, r io.Reader, fn func(name string, h *tar.Header, body io.Reader)) {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(strings.TrimPrefix(h.Name, "./"), h, tr)
	}
}

// LayerEntries calls fn with each entry of a layer, as TarEntries does.
func LayerEntries(t testing.TB, l v1.Layer, fn func(name string, h *tar.Header, body io.Reader)) {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	TarEntries(t, rc, fn)
}
