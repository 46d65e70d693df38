package spec

import "strings"

// DefaultName is the repository name of a spec that names none, as in
// flytekit's ImageSpec.
const DefaultName = "flytekit"

// flytekit's source copy modes (its CopyFileDetection enum), as flytekit
// writes them. A spec may write them in any case.
const (
	// CopyLoadedModules is flytekit's default when source_root is set: copy
	// the modules a Python process loaded. Finding those needs the user's
	// code to run, so ispec copies the whole source_root, as CopyAll.
	CopyLoadedModules = "LOADED_MODULES"
	// CopyAll copies source_root after ignore rules.
	CopyAll = "ALL"
	// CopyNone copies nothing: source_root is neither copied nor hashed.
	CopyNone = "NO_COPY"
)

var copyModes = []string{CopyLoadedModules, CopyAll, CopyNone}

// copyMode is the mode as flytekit writes it, or "" when s is not one.
func copyMode(s string) string {
	for _, m := range copyModes {
		if strings.EqualFold(strings.TrimSpace(s), m) {
			return m
		}
	}
	return ""
}

// copiesSource reports whether a normalized spec copies its source_root.
func copiesSource(s *Spec) bool { return s.SourceRoot != "" && s.SourceCopyMode != CopyNone }

func checkSourceCopyMode(c *collector, s *Spec) {
	if s.SourceCopyMode == "" {
		return
	}
	m := copyMode(s.SourceCopyMode)
	if m == "" {
		c.add(0, "source_copy_mode", "%q is not a copy mode; expected one of %s (flytekit's CopyFileDetection)", s.SourceCopyMode, strings.Join(copyModes, ", "))
		return
	}
	if m != CopyNone && s.SourceRoot == "" {
		c.add(0, "source_copy_mode", "%s copies source_root, which is not set; set source_root or write %s", m, CopyNone)
	}
}
