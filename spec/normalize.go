package spec

import (
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultPlatform is the platform of a spec that names none.
const DefaultPlatform = "linux/amd64"

// DefaultWorkdir is the working directory of a spec that names none, as in
// flytekit's images.
const DefaultWorkdir = "/root"

// normalize returns a copy of a valid spec in canonical form: name and
// registry lowercased (as flytekit does); set-like lists trimmed, sorted
// and de-duplicated; requirements in one spelling; base references fully
// qualified; platforms in containerd's normalized os/arch[/variant] form;
// paths cleaned; the copy mode as flytekit writes it. Order-carrying lists
// (commands, channels, index URLs, entrypoint) keep their order.
func normalize(s *Spec) *Spec {
	n := *s
	n.Name = strings.ToLower(strings.TrimSpace(s.Name))
	n.Registry = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s.Registry), "/"))
	if s.BaseImage.Ref != "" {
		n.BaseImage.Ref = NormalizeRef(s.BaseImage.Ref)
	}
	n.Packages = sortedSet(s.Packages, normalizeRequirement)
	n.AptPackages = sortedSet(s.AptPackages, strings.TrimSpace)
	n.CondaPackages = sortedSet(s.CondaPackages, strings.TrimSpace)
	n.Copy = sortedSet(s.Copy, func(p string) string { return path.Clean(strings.TrimSpace(p)) })
	n.Platform = sortedSet(s.Platform, NormalizePlatform)
	if len(n.Platform) == 0 {
		n.Platform = []string{DefaultPlatform}
	}
	if s.Workdir != "" {
		n.Workdir = path.Clean(s.Workdir)
	}
	n.User = strings.TrimSpace(s.User)
	n.SourceCopyMode = copyMode(s.SourceCopyMode)
	n.Layers = normalizeLayers(s.Layers)
	return &n
}

// NormalizeRef returns the fully qualified form of an image reference, so
// that "ubuntu" and "docker.io/library/ubuntu:latest" are one. A reference
// that does not parse is returned unchanged.
func NormalizeRef(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + r.Context().RepositoryStr()
	switch t := r.(type) {
	case name.Digest:
		// A reference by digest is that digest; a tag given beside it is noise.
		return repo + "@" + t.DigestStr()
	case name.Tag:
		return repo + ":" + t.TagStr()
	}
	return ref
}

func sortedSet(in []string, f func(string) string) []string {
	if len(in) == 0 {
		return nil
	}
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, v := range in {
		v = f(v)
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Strings(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
