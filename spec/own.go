package spec

import (
	"io/fs"
	"os"
)

// ownFiles are the identities of a spec's own files that exist: the spec
// file and its lock. No copied tree or source_root holds them (see
// Ignorer.withOwn), whatever path reaches them.
func ownFiles(specFile string) []fs.FileInfo {
	var out []fs.FileInfo
	for _, p := range []string{specFile, LockPath(specFile)} {
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			out = append(out, info)
		}
	}
	return out
}
