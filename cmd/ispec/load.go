package main

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/spec"
)

// loadSpecs resolves the command's configuration and loads the spec files
// named by args.
func loadSpecs(cmd *cobra.Command, args []string) (*config, []*spec.Image, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, err
	}
	imgs, err := loadAll(cmd.Context(), cfg, args, commandMessages(cmd, cmd.ErrOrStderr()))
	return cfg, imgs, err
}

// loadAll loads each spec file, reporting every invalid one, not just the
// first, and warns about secret files left out of copied trees and
// ImageSpec fields ispec ignores.
func loadAll(ctx context.Context, cfg *config, paths []string, msgs *messages) ([]*spec.Image, error) {
	imgs, errs := loadEach(ctx, cfg, paths)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	warnLoaded(msgs, imgs)
	return imgs, nil
}

// loadEach loads each spec file; errs[i] is why paths[i] is invalid.
func loadEach(ctx context.Context, cfg *config, paths []string) (imgs []*spec.Image, errs []error) {
	imgs, errs = make([]*spec.Image, len(paths)), make([]error, len(paths))
	for i, p := range paths {
		imgs[i], errs[i] = spec.Load(ctx, p, cfg.specOptions())
	}
	return imgs, errs
}
