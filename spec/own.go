package spec

import "io/fs"

// ownFiles are the identities of a spec's own files that exist, read
// from f: the spec file (its path on disk) and its lock. No copied tree or source_root holds them (see
// Ignorer.withOwn), whatever path reaches them.
func ownFiles(f *fsys, specFile string) []fs.FileInfo {
	var out []fs.FileInfo
	for _, p := range []string{specFile, LockPath(specFile)} {
		if info, err := f.stat(p); err == nil && info.Mode().IsRegular() {
			out = append(out, info)
		}
	}
	return out
}
