// Command devindex writes the demo wheels of package pyindex into a
// directory and serves them as a PEP 503 simple index, for the development
// environment (scripts/devenv.sh).
//
//	devindex -dir DIR -addr 127.0.0.1:5001 [-log FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/ispec-dev/ispec/internal/pyindex"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devindex:", err)
		os.Exit(1)
	}
}

func run() error {
	dir := flag.String("dir", "", "directory holding the wheels (created; demo wheels are written into it)")
	addr := flag.String("addr", "127.0.0.1:5001", "address to listen on")
	logPath := flag.String("log", "", "append one line per request to this file (default stderr)")
	user := flag.String("user", "", "require HTTP basic auth with this user (password from DEVINDEX_PASSWORD)")
	flag.Parse()
	if *dir == "" {
		return fmt.Errorf("-dir is required")
	}
	if err := pyindex.WriteDemo(*dir); err != nil {
		return err
	}
	var logw io.Writer = os.Stderr
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("open log: %w", err)
		}
		defer f.Close()
		logw = f
	}
	opts := []pyindex.Option{pyindex.WithLog(logw)}
	if *user != "" {
		opts = append(opts, pyindex.WithBasicAuth(*user, os.Getenv("DEVINDEX_PASSWORD")))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintf(os.Stderr, "devindex: serving %s on http://%s/simple/\n", *dir, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return pyindex.Serve(ctx, ln, *dir, opts...)
}
