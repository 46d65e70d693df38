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
