package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ispec",
		Short: "Build each declared container image exactly once",
		Long: `ispec hashes everything that determines an image (base, packages, env,
files) into a deterministic tag, asks the registry whether that tag exists,
and builds it with BuildKit only when it is absent.

Settings come from defaults < config file < ISPEC_* environment < flags.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.String("config", "", "config file (default $XDG_CONFIG_HOME/ispec/config.yaml; env ISPEC_CONFIG)")
	pf.String("registry", "", "registry for specs that name none (env ISPEC_REGISTRY)")
	pf.String("cache-dir", "", "local index and lock folder (env ISPEC_CACHE_DIR; default the user cache dir)")
	pf.String("base-image", "", "base of specs that name no base, Python or CUDA version (env ISPEC_BASE_IMAGE)")
	pf.String("python-base", "", "base template for python_version without base_image (env ISPEC_PYTHON_BASE)")
	pf.String("cuda-base", "", "base template for cuda without base_image (env ISPEC_CUDA_BASE)")
	root.AddCommand(
		newTagCmd(),
		newExistsCmd(),
		newLockCmd(),
		newBuildCmd(),
		newExplainCmd(),
		newDiffCmd(),
		newValidateCmd(),
		newVersionCmd(),
		newServeCmd(),
	)
	return root
}

// exactArgs is cobra.ExactArgs with errors that map to the usage exit code.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with errors that map to the usage exit code.
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
