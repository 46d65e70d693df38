package main

import (
	"context"
	"errors"
	"io"

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
	imgs, err := loadAll(cmd.Context(), cfg, args, cmd.ErrOrStderr())
	return cfg, imgs, err
}

// loadAll loads each spec file, reporting every invalid one, not just the
// first, and warns on stderr about secret files left out of copied trees.
func loadAll(ctx context.Context, cfg *config, paths []string, stderr io.Writer) ([]*spec.Image, error) {
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
	warnExcluded(stderr, imgs)
	return imgs, nil
}
