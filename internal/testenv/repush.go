package testenv

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Repush says how RepushImage writes an image's files again under other
// blobs, as upstream base tags are rebuilt.
type Repush int

const (
	// Recompress keeps every layer's files byte for byte (the same diff
	// IDs and config) and compresses them otherwise: other layer blobs,
	// another manifest.
	Recompress Repush = iota
	// Retimestamp keeps every layer's files and moves each entry's
	// modification time one second on: other diff IDs, config and
	// manifest.
	Retimestamp
)

// RepushImage writes the image at ref again to ref with the same files
// under other blobs (how says which), and returns the old and the new
// manifest digests.
func RepushImage(t testing.TB, ref string, how Repush) (old, now v1.Hash) {
	t.Helper()
	im := Pull(t, ref)
	cf, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := im.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var history []v1.History
	for i, l := range layers {
		data := layerData(t, l, how)
		nl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		h := v1.History{CreatedBy: "ispec test re-push"}
		if i < len(cf.History) {
			h = cf.History[i]
		}
		history = append(history, h)
		if out, err = mutate.Append(out, mutate.Addendum{Layer: nl, History: h}); err != nil {
			t.Fatal(err)
		}
	}
	// The config as it was, with the new layers' diff IDs (the same ones
	// when only the compression changed).
	ncf, err := out.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.RootFS = ncf.RootFS
	cf.History = history
	if out, err = mutate.ConfigFile(out, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, out); err != nil {
		t.Fatalf("re-pushing %s: %v", ref, err)
	}
	old, _ = im.Digest()
	now, _ = out.Digest()
	if old == now {
		t.Fatalf("re-pushing %s gave the same manifest %s", ref, now)
	}
	return old, now
}

// layerData is a layer's uncompressed tar, rewritten as how says.
func layerData(t testing.TB, l v1.Layer, how Repush) []byte {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if how == Recompress {
		data, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading a layer: %v", err)
		}
		h.ModTime = h.ModTime.Add(time.Second)
		h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
