package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// --output oci:DIR/ with several specs writes one OCI tarball per spec,
// named NAME_TAG.tar (the spec's name), and pushes nothing (the CI action's push: false).
func TestOutputFolderOfSeveralSpecs(t *testing.T) {
	env := e2e(t)
	a := uniqueSpec(t, env, "env: {WHICH: a}\n")
	b := uniqueSpec(t, env, "env: {WHICH: b}\n")
	dir := t.TempDir()
	out, errOut, code := run(t, "build", "--progress", "quiet", "--output", "oci:"+dir+"/", a, b)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, s := range []string{a, b} {
		tagOut, _, _ := run(t, "tag", s)
		ref := strings.TrimSpace(tagOut)
		repo, tag, _ := strings.Cut(ref[strings.Index(ref, "/")+1:], ":")
		file := filepath.Join(dir, repo[strings.LastIndex(repo, "/")+1:]+"_"+tag+".tar")
		if _, err := os.Stat(file); err != nil {
			entries, _ := os.ReadDir(dir)
			t.Fatalf("%s: no %s (%v); the folder holds %v", s, file, err, entries)
		}
		idx, err := layout.ImageIndexFromPath(untarTo(t, file))
		if err != nil {
			t.Fatalf("%s is not an OCI layout: %v", file, err)
		}
		if m, err := idx.IndexManifest(); err != nil || len(m.Manifests) == 0 {
			t.Errorf("%s: index %v, %v", file, m, err)
		}
		assertNothingPushed(t, env, ref)
	}
	_, errOut, code = run(t, "build", "--output", "oci:"+filepath.Join(dir, "one.tar"), a, b)
	if code != exitInvalid || !strings.Contains(errOut, "a folder") {
		t.Errorf("two specs into one file: exit %d, stderr %s", code, errOut)
	}
}
