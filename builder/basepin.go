package builder

import (
	"maps"
	"strings"
	"sync"

	digest "github.com/opencontainers/go-digest"

	"github.com/ispec-dev/ispec/spec"
)

// basePins are the base images of one build resolved to digests, by
// platform (platforms.Format). The build's first solve resolves them;
// its graph, the registry cache family key and every later solve of the
// build (the cache export after the push) use them, so that one build
// reads one base even when its tag is pushed again meanwhile, and a
// family's cache holds the steps of one base, not of each push of a tag.
type basePins struct {
	mu   sync.Mutex
	refs map[string]string // platform -> repository@digest, or a digest reference as given
}

func (b *basePins) get(plat string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.refs[plat]
}

func (b *basePins) set(plat, ref string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refs == nil {
		b.refs = map[string]string{}
	}
	b.refs[plat] = ref
}

func (b *basePins) all() map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.refs)
}

// pinBase returns the reference a build of base starts from: base itself
// when it names a digest (a lock's pin, a nested spec's parent), else
// its repository at dgst, the digest its tag resolved to.
func pinBase(base string, dgst digest.Digest) string {
	if strings.Contains(base, "@") || dgst == "" {
		return base
	}
	return spec.Repository(base) + "@" + dgst.String()
}
