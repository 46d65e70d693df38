package spec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// typicalSpec is the spec the performance targets talk about: 10 apt
// packages, 30 pip packages and a requirements file.
func typicalSpec() map[string]string {
	var pkgs []string
	for i := 0; i < 30; i++ {
		pkgs = append(pkgs, fmt.Sprintf("package-%02d==1.%d.0", i, i))
	}
	return map[string]string{
		"spec.yaml": "name: typical\nregistry: ghcr.io/org\npython_version: \"3.11\"\n" +
			"apt_packages: [curl, git, jq, libpq5, libgl1, ca-certificates, gcc, make, unzip, zip]\n" +
			"packages: [" + strings.Join(pkgs, ", ") + "]\nrequirements: requirements.txt\n" +
			"env: {A: \"1\"}\ncommands: [\"echo ready\"]\n",
		"requirements.txt": strings.Repeat("somepkg==1.0.0\n", 50),
	}
}

func BenchmarkLoadTypical(b *testing.B) {
	dir := fixture(b, typicalSpec())
	p := filepath.Join(dir, "spec.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(context.Background(), p, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashTree hashes 2,000 files of 10 KiB (20 MB); b.SetBytes makes
// `go test -bench` print MB/s. scripts/bench-identity.sh measures the full
// 20,000 file / 200 MB tree against sha256sum.
func BenchmarkHashTree(b *testing.B) {
	dir := benchTree(b)
	b.SetBytes(2000 * 10 << 10)
	for b.Loop() {
		if _, err := HashTree(context.Background(), dir, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashTreeRooted is BenchmarkHashTree through an os.Root, as a
// server hashes an upload.
func BenchmarkHashTreeRooted(b *testing.B) {
	dir := benchTree(b)
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	f, err := newFsys(root)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(2000 * 10 << 10)
	for b.Loop() {
		if _, err := hashTree(context.Background(), f, f.top, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTree writes 2,000 files of 10 KiB in 50 folders.
func benchTree(b *testing.B) string {
	dir := b.TempDir()
	data := make([]byte, 10<<10)
	for i := 0; i < 2000; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%50))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		data[0] = byte(i)
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%04d", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}
