package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/spec"
)

// version is set at link time (-ldflags "-X main.version=v1.2.3"); otherwise
// it comes from the module's build info.
var version = ""

func ispecVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ispec's version, hash encoding and build recipe",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "ispec %s\nidentity encoding: %s\nbuild recipe: %s (%s)\ngo: %s %s/%s\n",
				ispecVersion(), spec.Encoding, spec.RecipeVersion, spec.RecipeChange, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
