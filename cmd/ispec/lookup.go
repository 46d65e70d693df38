package main

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/internal/assemble"
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
	l, err := assemble.NewLookup(assemble.LookupSettings{InsecureRegistries: cfg.InsecureRegistries, UserAgent: "ispec/" + ispecVersion()})
	if err != nil {
		return nil, usageError{err}
	}
	return l.Remote, nil
}

// newLookup returns the lookup cfg asks for: the local index in front of
// the registry (without a usable index, it warns and asks the registry).
func newLookup(cfg *config, verify bool, msgs *messages) (*assemble.Lookup, error) {
	l, err := assemble.NewLookup(cfg.lookupSettings(verify, msgs))
	if err != nil {
		return nil, usageError{err}
	}
	return l, nil
}
