package spec

import (
	"path"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// DefaultPlatform is the platform of a spec that names none.
const DefaultPlatform = "linux/amd64"

// DefaultWorkdir is the working directory of a spec that names none, as in
// flytekit's images.
const DefaultWorkdir = "/root"

// normalize returns a copy of a valid spec in canonical form: set-like lists
// trimmed, sorted and de-duplicated; base references fully qualified;
// platforms in os/arch[/variant] form; paths cleaned. Order-carrying lists
// (commands, channels, index URLs, entrypoint) keep their order.
func normalize(s *Spec) *Spec {
	n := *s
	n.Name = strings.ToLower(strings.TrimSpace(s.Name))
	n.Registry = strings.TrimSuffix(strings.TrimSpace(s.Registry), "/")
	if s.BaseImage.Ref != "" {
		n.BaseImage.Ref = NormalizeRef(s.BaseImage.Ref)
	}
	n.Packages = sortedSet(s.Packages, normalizeRequirement)
	n.AptPackages = sortedSet(s.AptPackages, strings.TrimSpace)
	n.CondaPackages = sortedSet(s.CondaPackages, strings.TrimSpace)
	n.Copy = sortedSet(s.Copy, func(p string) string { return path.Clean(strings.TrimSpace(p)) })
	n.Platform = sortedSet(s.Platform, func(p string) string {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			return p
		}
		return pl.String()
	})
	if len(n.Platform) == 0 {
		n.Platform = []string{DefaultPlatform}
	}
	if s.Workdir != "" {
		n.Workdir = path.Clean(s.Workdir)
	}
	n.SourceCopyMode = strings.ToLower(s.SourceCopyMode)
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

var pepSepRe = lazyRe(`[-_.]+`)

// normalizeRequirement trims a requirement and writes its distribution name
// in PEP 503 normalized form, so "Pandas" and "pandas" are one.
func normalizeRequirement(r string) string {
	r = strings.TrimSpace(r)
	n := pepNameRe.FindString(r)
	if n == "" {
		return r
	}
	return strings.ToLower(pepSepRe.ReplaceAllString(n, "-")) + r[len(n):]
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
