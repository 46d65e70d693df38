package main

import (
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/spec"
)

// imageTag parses an image's reference, which needs a registry to be
// looked up or pushed.
func imageTag(img *spec.Image) (name.Tag, error) {
	if img.Identity.Registry == "" {
		return name.Tag{}, usageError{fmt.Errorf("%s: no registry to look %s up in: set registry in the spec, --registry or ISPEC_REGISTRY", img.File, img.Identity.Ref)}
	}
	t, err := name.NewTag(img.Identity.Ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, usageError{fmt.Errorf("%s: %w", img.File, err)}
	}
	return t, nil
}

// newRemote returns the registry client the configuration asks for.
func newRemote(cfg *config) (*cache.Remote, error) {
	r, err := cache.NewRemote(cache.WithInsecureRegistries(cfg.InsecureRegistries...), cache.WithUserAgent("ispec/"+ispecVersion()))
	if err != nil {
		return nil, usageError{err}
	}
	return r, nil
}

// withIndex returns a lookup that remembers positive answers in the local
// index of the cache dir, and that index. Without a usable index it warns
// and returns remote itself (and a nil index): lookups still work.
func withIndex(cfg *config, remote *cache.Remote, verify bool, msgs *messages) (cache.Checker, *cache.Index) {
	if cfg.CacheDir == "" {
		return remote, nil
	}
	idx, err := cache.OpenIndex(cfg.CacheDir)
	if err != nil {
		msgs.warn("local index unavailable, asking the registry: %v", err)
		return remote, nil
	}
	// The same failure (an index that cannot be opened) repeats on every
	// lookup: say it once.
	var mu sync.Mutex
	said := map[string]bool{}
	return cache.NewCached(remote, idx, cache.WithVerify(verify), cache.WithIndexErrors(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if !said[err.Error()] {
			said[err.Error()] = true
			msgs.warn("local index: %v", err)
		}
	})), idx
}
