package assemble

import (
	"context"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/spec"
)

// LookupSettings are what a lookup is made from.
type LookupSettings struct {
	// InsecureRegistries are reached over plain HTTP besides loopback
	// ones.
	InsecureRegistries []string
	// UserAgent is sent to registries.
	UserAgent string
	// CacheDir holds the local index of images known to exist; empty:
	// every lookup asks the registry.
	CacheDir string
	// Verify asks the registry even for tags the index knows.
	Verify bool
	// Warn is told, once per distinct message, what degrades (an index
	// that cannot be used). Nil: nobody.
	Warn func(format string, args ...any)
}

// Lookup answers whether images exist: the local index in front of the
// registry.
type Lookup struct {
	// Checker answers lookups.
	Checker cache.Checker
	// Remote is the registry client behind the index.
	Remote *cache.Remote
	index  *cache.Cached
	warn   func(format string, args ...any)
}

// NewLookup returns the lookup s asks for. Without a usable index it
// warns and asks the registry: lookups still work.
func NewLookup(s LookupSettings) (*Lookup, error) {
	r, err := cache.NewRemote(cache.WithInsecureRegistries(s.InsecureRegistries...), cache.WithUserAgent(s.UserAgent))
	if err != nil {
		return nil, err
	}
	warn := s.Warn
	if warn == nil {
		warn = func(string, ...any) {}
	}
	l := &Lookup{Checker: r, Remote: r, warn: warn}
	if s.CacheDir == "" {
		return l, nil
	}
	idx, err := cache.OpenIndex(s.CacheDir)
	if err != nil {
		warn("local index unavailable, asking the registry: %v", err)
		return l, nil
	}
	// The same failure (an index that cannot be opened) repeats on every
	// lookup: say it once.
	var mu sync.Mutex
	said := map[string]bool{}
	l.index = cache.NewCached(r, idx, cache.WithVerify(s.Verify), cache.WithIndexErrors(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !said[err.Error()] {
			said[err.Error()] = true
			warn("local index: %v", err)
		}
	}))
	l.Checker = l.index
	return l, nil
}

// Prepare readies the lookups of many images and their parents at once:
// the local index read in one go, one registry handshake per registry
// rather than one per repository.
func (l *Lookup) Prepare(ctx context.Context, imgs []*spec.Image) {
	pr, ok := l.Checker.(cache.Preparer)
	if !ok {
		return
	}
	var refs []name.Tag
	seen := map[*spec.Image]bool{}
	for _, img := range imgs {
		for ; img != nil && !seen[img]; img = img.Parent {
			seen[img] = true
			if t, err := ensure.Tag(img); err == nil {
				refs = append(refs, t)
			}
		}
	}
	if len(refs) > 1 {
		pr.Prepare(ctx, refs)
	}
}

// recorder returns the recorder of a lookup backed by the local index.
func (l *Lookup) recorder() (ensure.Recorder, bool) {
	if l.index == nil {
		return nil, false
	}
	return recordWarner{l.index, l.warn}, true
}

// recordWarner records built images in the local index, warning when it
// cannot (the next lookup then asks the registry).
type recordWarner struct {
	c    *cache.Cached
	warn func(format string, args ...any)
}

func (r recordWarner) Record(ref name.Tag, d v1.Hash) error {
	if err := r.c.Record(ref, d); err != nil {
		r.warn("local index: %v", err)
		return err
	}
	return nil
}
