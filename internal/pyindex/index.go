package pyindex

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Option configures a Handler.
type Option func(*config)

type config struct {
	user, pass string
	auth       bool
	log        io.Writer
}

// WithBasicAuth makes the index demand HTTP basic authentication with the
// given user and password on every request; others get 401.
func WithBasicAuth(user, password string) Option {
	return func(c *config) { c.user, c.pass, c.auth = user, password, true }
}

// WithLog writes one line per request ("METHOD PATH STATUS") to w.
func WithLog(w io.Writer) Option {
	return func(c *config) { c.log = w }
}

// Handler returns a PEP 503 simple index over the wheels (*.whl) in dir:
//
//	/simple/               lists the projects
//	/simple/<project>/     links each wheel of a project with a #sha256= fragment
//	/files/<wheel>         the wheel itself
//
// The directory is read on every request, so wheels written after the
// handler was created are served too.
func Handler(dir string, opts ...Option) http.Handler {
	h := &handler{dir: dir, sums: map[string]sumEntry{}}
	for _, o := range opts {
		o(&h.cfg)
	}
	return h
}

type sumEntry struct {
	size int64
	mod  time.Time
	sum  string
}

type handler struct {
	dir  string
	cfg  config
	mu   sync.Mutex
	sums map[string]sumEntry
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (h *handler) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	if h.cfg.log != nil {
		defer func() {
			fmt.Fprintf(h.cfg.log, "%s %s %s %d\n", time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.Path, w.status)
		}()
	}
	if h.cfg.auth {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(h.cfg.user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(h.cfg.pass)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="pyindex"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/simple" || p == "/" || p == "":
		http.Redirect(w, r, "/simple/", http.StatusMovedPermanently)
	case p == "/simple/":
		h.serveRoot(w)
	case strings.HasPrefix(p, "/simple/"):
		name := strings.Trim(strings.TrimPrefix(p, "/simple/"), "/")
		if strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		if n := Normalize(name); n != name || !strings.HasSuffix(p, "/") {
			http.Redirect(w, r, "/simple/"+n+"/", http.StatusMovedPermanently)
			return
		}
		h.serveProject(w, r, name)
	case strings.HasPrefix(p, "/files/"):
		file := strings.TrimPrefix(p, "/files/")
		if file == "" || strings.Contains(file, "/") || !strings.HasSuffix(file, ".whl") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeFile(w, r, filepath.Join(h.dir, file))
	default:
		http.NotFound(w, r)
	}
}

// projects maps normalized project names to their wheel file names.
func (h *handler) projects() (map[string][]string, error) {
	ents, err := os.ReadDir(h.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return map[string][]string{}, nil
		}
		return nil, fmt.Errorf("read index dir: %w", err)
	}
	out := map[string][]string{}
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".whl") || strings.HasPrefix(n, ".") {
			continue
		}
		dist, _, ok := strings.Cut(n, "-")
		if !ok {
			continue
		}
		proj := Normalize(dist)
		out[proj] = append(out[proj], n)
	}
	for _, files := range out {
		sort.Strings(files)
	}
	return out, nil
}

func (h *handler) serveRoot(w http.ResponseWriter) {
	projs, err := h.projects()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	names := make([]string, 0, len(projs))
	for n := range projs {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Simple index</title></head><body>\n")
	for _, n := range names {
		fmt.Fprintf(&b, "<a href=\"%s/\">%s</a><br>\n", html.EscapeString(n), html.EscapeString(n))
	}
	b.WriteString("</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

func (h *handler) serveProject(w http.ResponseWriter, r *http.Request, name string) {
	projs, err := h.projects()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	files, ok := projs[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\"><title>Links for %s</title></head><body>\n<h1>Links for %s</h1>\n",
		html.EscapeString(name), html.EscapeString(name))
	for _, f := range files {
		sum, err := h.sha256(f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(&b, "<a href=\"../../files/%s#sha256=%s\">%s</a><br>\n",
			html.EscapeString(f), sum, html.EscapeString(f))
	}
	b.WriteString("</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

// sha256 returns the hex sha256 of a wheel in the directory, remembered per
// size and modification time.
func (h *handler) sha256(file string) (string, error) {
	p := filepath.Join(h.dir, path.Base(file))
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("stat wheel: %w", err)
	}
	h.mu.Lock()
	e, ok := h.sums[file]
	h.mu.Unlock()
	if ok && e.size == st.Size() && e.mod.Equal(st.ModTime()) {
		return e.sum, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("open wheel: %w", err)
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", fmt.Errorf("hash wheel: %w", err)
	}
	sum := hex.EncodeToString(d.Sum(nil))
	h.mu.Lock()
	h.sums[file] = sumEntry{size: st.Size(), mod: st.ModTime(), sum: sum}
	h.mu.Unlock()
	return sum, nil
}

// Serve serves the index over dir on ln until ctx is done, then shuts the
// server down gracefully.
func Serve(ctx context.Context, ln net.Listener, dir string, opts ...Option) error {
	srv := &http.Server{Handler: Handler(dir, opts...), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve index: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shut down index: %w", err)
		}
		return nil
	}
}
