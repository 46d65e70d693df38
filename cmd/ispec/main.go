// Command ispec turns image spec files into content-addressed images: it
// computes each image's tag, looks it up in the registry, and builds it with
// BuildKit only when it is absent.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.err == nil {
			os.Exit(ee.code)
		}
		reportError(os.Stderr, err)
		os.Exit(exitCode(err))
	}
}
