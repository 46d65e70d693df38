package main

import (
	"fmt"
	"strings"

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
		// Runnable with no arguments (it prints help), so that an unknown
		// command reaches unknownCommand and is a usage error.
		Args: unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		// Typos of up to two letters get a suggestion.
		SuggestionsMinimumDistance: 2,
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
		newGenDocsCmd(),
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

// unknownCommand refuses arguments to the root command: they name a
// command that does not exist.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	var names []string
	for _, c := range cmd.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return usageError{fmt.Errorf("%s (commands: %s)", msg, strings.Join(names, ", "))}
}
