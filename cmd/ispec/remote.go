package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/client"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/spec"
)

// newEnsurer returns the pipeline `build` runs: the server's when one is
// configured, else a local one.
func newEnsurer(ctx context.Context, cfg *config, f buildFlags, msgs *messages) (ensurer, error) {
	if cfg.Server == "" {
		return newPipeline(ctx, cfg, f, msgs)
	}
	c, err := dialServer(cfg)
	if err != nil {
		return nil, err
	}
	detail := apiv1.ProgressDetail_PROGRESS_DETAIL_FULL
	if f.progress == builder.ModeQuiet {
		detail = apiv1.ProgressDetail_PROGRESS_DETAIL_NONE
	}
	return &serverPipeline{c: c, detail: detail}, nil
}

// serverPipeline is a server's pipeline.
type serverPipeline struct {
	c      *client.Client
	detail apiv1.ProgressDetail
}

func (r *serverPipeline) Ensure(ctx context.Context, img *spec.Image, req ensure.Request) (*ensure.Result, error) {
	return r.c.Build(ctx, img, req, r.detail)
}

// Export is refused: a server pushes, it writes no local file.
func (r *serverPipeline) Export(context.Context, *spec.Image, *builder.Output, ensure.Request) (*ensure.Result, error) {
	return nil, usageError{errors.New("--output writes a local file: it cannot go through --server")}
}

// Prepare does nothing: the server prepares its own lookups.
func (r *serverPipeline) Prepare(context.Context, []*spec.Image) {}

func (r *serverPipeline) close() { r.c.Close() }

// addServerFlags adds the flags that send a command through a server.
func addServerFlags(fl *pflag.FlagSet) {
	fl.String("server", "", "`HOST:PORT` (or unix:///PATH) of an ispec serve to go through instead of the local registry and BuildKit (env ISPEC_SERVER)")
	fl.String("token-file", "", "file whose first token authenticates to --server (env ISPEC_TOKEN_FILE; or the token itself in ISPEC_TOKEN)")
}

// dialServer connects to the configured server with its token.
func dialServer(cfg *config) (*client.Client, error) {
	token := cfg.Token
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("token-file: %w", err)}
		}
		token = firstToken(string(b))
		if token == "" {
			return nil, usageError{fmt.Errorf("token-file %s holds no token", cfg.TokenFile)}
		}
	}
	var opts []client.Option
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}
	c, err := client.Dial(cfg.Server, opts...)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// firstToken returns the token of a token file's first line, in the
// server's format (TOKEN, NAME:TOKEN or NAME:TOKEN:admin; # comments; a
// byte order mark and CRLF ignored), so one file serves both sides.
func firstToken(file string) string {
	for _, line := range strings.Split(strings.TrimPrefix(file, "\ufeff"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if parts := strings.Split(line, ":"); len(parts) == 2 || len(parts) == 3 {
			return parts[1]
		}
		return line
	}
	return ""
}
