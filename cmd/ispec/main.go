// Command ispec turns image spec files into content-addressed images: it
// computes each image's tag, looks it up in the registry, and builds it with
// BuildKit only when it is absent.
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		// A second signal ends the process at once, the default way.
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		cancel(&interruptedError{sig: sig})
	}()
	root := newRootCmd()
	cmd, err := root.ExecuteContextC(ctx)
	os.Exit(finish(ctx, cmd, err, os.Stderr))
}

// interruption returns the interruptedError that cancelled ctx, else
// err: a command that fails after a signal was interrupted, whatever error
// the cancellation surfaced as.
func interruption(ctx context.Context, err error) error {
	var ie *interruptedError
	if errors.As(context.Cause(ctx), &ie) {
		return ie
	}
	return err
}

// finish reports the error a command ended with on stderr and returns the
// exit code.
func finish(ctx context.Context, cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	err = interruption(ctx, err)
	var ee *exitError
	if !errors.As(err, &ee) || ee.err != nil {
		commandMessages(cmd, stderr).error(err)
	}
	return exitCode(err)
}
