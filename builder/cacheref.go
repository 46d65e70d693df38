package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ispec-dev/ispec/spec"
)

// CacheTag is the tag of an image repository's registry cache.
const CacheTag = "ispec-cache"

// CacheFamilyRepository is the repository, next to the images (or at the
// cache registry's root), that holds one registry cache per base-and-apt
// family.
const CacheFamilyRepository = "ispec-cache"

// cacheFamilyHexLen is how many hex digits of the family hash a family
// cache's tag keeps.
const cacheFamilyHexLen = 32

// CacheRefs are the registry cache references of one image (see
// docs/registry-cache.md):
//
//   - Repo, one per image repository: <prefix>/<repository>:ispec-cache;
//     every build of a spec of that name (each variant) shares it.
//   - Family, one per base-and-apt family:
//     <prefix>/ispec-cache:family-<hash>, where the hash covers the
//     recipe version, the base image of each platform, the apt set and
//     the platforms; specs of other names with the same base and apt
//     packages share it. RegistryCacheRefs keys it by the base names it
//     is given; a build keys it by the digests they resolve to.
//
// <prefix> is the cache registry when one is configured, else the
// registry (host and path) the image is pushed to.
type CacheRefs struct {
	// Repo is the image repository's cache reference.
	Repo string
	// Family is the base-and-apt family's cache reference.
	Family string
}

// Refs lists the references, the repository's first: the order in which
// a build imports them and exports to them.
func (c CacheRefs) Refs() []string {
	var out []string
	for _, r := range []string{c.Repo, c.Family} {
		if r != "" {
			out = append(out, r)
		}
	}
	return out
}

// CheckCacheRegistry checks a cache registry setting: empty, or
// host[:port][/path] without a scheme or empty path components, naming
// repositories a registry accepts. It contacts nothing.
func CheckCacheRegistry(cacheRegistry string) error {
	prefix := strings.TrimSuffix(cacheRegistry, "/")
	switch {
	case prefix == "":
		return nil
	case strings.Contains(prefix, "://"):
		return fmt.Errorf("cache registry %q: expected host[:port][/path], without a scheme", cacheRegistry)
	case slices.Contains(strings.Split(prefix, "/"), ""):
		return fmt.Errorf("cache registry %q: expected host[:port][/path], without empty path components", cacheRegistry)
	}
	if _, err := name.NewTag(prefix+"/"+CacheFamilyRepository+":"+CacheTag, name.StrictValidation); err != nil {
		return fmt.Errorf("cache registry %q: %w", cacheRegistry, err)
	}
	return nil
}

// RegistryCacheRefs computes img's cache references. base overrides the
// spec's base image as BuildOptions.Base does (a nested spec's parent
// ref@digest). cacheRegistry ("host[:port][/path]") puts the cache there
// instead of next to the image; empty means the image's own registry.
// When the image names no registry and no cache registry is given, there
// is nowhere to keep a cache: the result is empty. The function is pure:
// it contacts nothing.
func RegistryCacheRefs(img *spec.Image, base, cacheRegistry string) (CacheRefs, error) {
	if err := CheckCacheRegistry(cacheRegistry); err != nil {
		return CacheRefs{}, err
	}
	prefix := strings.TrimSuffix(cacheRegistry, "/")
	repo := img.Identity.Repository
	var familyPrefix string
	if prefix != "" {
		familyPrefix = prefix
	} else {
		if img.Identity.Registry == "" {
			return CacheRefs{}, nil
		}
		prefix = img.Identity.Registry
		// The family cache lives where the spec's registry setting points
		// (host and path), next to the images of every name under it.
		familyPrefix = prefix
		if dir := path.Dir(repo); dir != "." {
			familyPrefix = prefix + "/" + dir
		}
	}
	refs := CacheRefs{
		Repo:   prefix + "/" + repo + ":" + CacheTag,
		Family: familyRef(familyPrefix, cacheFamily(img, base)),
	}
	for _, r := range refs.Refs() {
		if _, err := name.NewTag(r, name.StrictValidation); err != nil {
			return CacheRefs{}, fmt.Errorf("registry cache reference %q: %w", r, err)
		}
	}
	return refs, nil
}

// familyRef is the family reference of hash under prefix.
func familyRef(prefix, hash string) string {
	return prefix + "/" + CacheFamilyRepository + ":family-" + hash
}

// familyPrefix returns where refs.Family lives: the reference without
// its repository and tag.
func familyPrefix(family string) string {
	p, _, _ := strings.Cut(family, "/"+CacheFamilyRepository+":family-")
	return p
}

// cacheFamily hashes what decides the first steps of the recipe: the
// recipe version, each platform's base image (base, else the spec's) and
// the apt set.
func cacheFamily(img *spec.Image, base string) string {
	return cacheFamilyOf(img, func(p string) string {
		if base != "" {
			return base
		}
		return img.BaseRef(p)
	})
}

// pinnedFamily returns opts with its registry cache family reference
// (the one WithRegistryCache set) keyed by the bases the build resolved
// (pins: repository@digest by platform) rather than their tags: a tag
// pushed again, even with the same files under other blobs, starts
// another family, so a family's cache holds the steps of one base. opts
// is returned as it is when it has no family reference.
func (o BuildOptions) pinnedFamily(img *spec.Image, pins map[string]string) BuildOptions {
	if o.family == "" || len(pins) == 0 {
		return o
	}
	pinned := familyRef(o.familyPrefix, cacheFamilyOf(img, func(p string) string {
		if r := pins[p]; r != "" {
			return r
		}
		if o.Base != "" {
			return o.Base
		}
		return img.BaseRef(p)
	}))
	swap := func(refs []string) []string {
		out := slices.Clone(refs)
		for i, r := range out {
			if r == o.family {
				out[i] = pinned
			}
		}
		return out
	}
	o.CacheImports, o.CacheExports, o.family = swap(o.CacheImports), swap(o.CacheExports), pinned
	return o
}

// cacheFamilyOf is cacheFamily with each platform's base given by baseOf.
func cacheFamilyOf(img *spec.Image, baseOf func(platform string) string) string {
	plats := slices.Clone(img.Spec.Platform)
	slices.Sort(plats)
	bases := make([]string, len(plats))
	for i, p := range plats {
		bases[i] = baseOf(p)
	}
	apt := slices.Clone(img.Spec.AptPackages)
	slices.Sort(apt)
	doc, _ := json.Marshal(struct {
		Recipe    string   `json:"recipe"`
		Platforms []string `json:"platforms"`
		Bases     []string `json:"bases"`
		Apt       []string `json:"apt"`
	}{spec.RecipeVersion, plats, bases, apt})
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])[:cacheFamilyHexLen]
}

// CacheMode says which builds use the registry cache.
type CacheMode int

const (
	// CacheAuto uses it for builds that push, not for Output builds (their
	// registry is neither asked nor needed). The default.
	CacheAuto CacheMode = iota
	// CacheOn uses it for every build, Output builds included.
	CacheOn
	// CacheOff never uses it.
	CacheOff
)

// WithRegistryCache returns opts with img's registry cache references
// (RegistryCacheRefs, with opts.Base and cacheRegistry) as its imports and
// exports, when mode says the build uses the cache; opts unchanged
// otherwise. Build keys the family reference by the digests the bases
// resolve to when it runs (a base tag pushed again starts a new family).
func WithRegistryCache(opts BuildOptions, img *spec.Image, mode CacheMode, cacheRegistry string) (BuildOptions, error) {
	if mode == CacheOff || (mode == CacheAuto && opts.Output != nil) {
		return opts, nil
	}
	refs, err := RegistryCacheRefs(img, opts.Base, cacheRegistry)
	if err != nil {
		return opts, err
	}
	opts.CacheImports = refs.Refs()
	opts.CacheExports = refs.Refs()
	opts.family, opts.familyPrefix = refs.Family, familyPrefix(refs.Family)
	return opts, nil
}
