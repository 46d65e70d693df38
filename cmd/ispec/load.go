package main

import (
	"context"
	"errors"

	"github.com/ispec-dev/ispec/spec"
)

// loadAll loads each spec file, reporting every invalid one, not just the
// first.
func loadAll(ctx context.Context, cfg *config, paths []string) ([]*spec.Image, error) {
	imgs := make([]*spec.Image, len(paths))
	var errs []error
	for i, p := range paths {
		img, err := spec.Load(ctx, p, cfg.specOptions())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		imgs[i] = img
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return imgs, nil
}
