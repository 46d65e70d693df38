package builder

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestE2ESecretAsEnv builds a packages layer that finds its private index
// only through a secret given as the env variable PIP_INDEX_URL (the file
// ends in a newline, as an editor leaves it): pip installs from it, a
// later step does not see the variable, and the secret is in no log
// line, layer or config.
func TestE2ESecretAsEnv(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	password := fmt.Sprintf("ispec-env-secret-%d", time.Now().UnixNano())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pyindex.Handler(env.IndexWheels, pyindex.WithBasicAuth("ispec", password))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	private := "http://ispec:" + password + "@" + ln.Addr().String() + "/simple"

	repo := fmt.Sprintf("e2e-secret-env-%d", time.Now().UnixNano())
	doc := fmt.Sprintf(`name: secret-env
registry: %s/%s
base_image: %s
layers:
  - packages: [ispec-demo-b==2.0.0]
    pip_secret_mounts: [{source: private/index-url, env: PIP_INDEX_URL}]
  - commands:
      - python -c 'import ispec_demo_b; print(ispec_demo_b.__version__)' > /py.txt
      - test -z "${PIP_INDEX_URL:-}"
`, env.Registry, repo, env.BasePython)
	img := loadSpecIn(t, t.TempDir(), doc, map[string]string{"private/index-url": private + "\n"})
	res, events, err := build(t, b, img)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	for _, s := range events {
		for _, l := range s.Logs {
			if strings.Contains(string(l.Data), password) {
				t.Errorf("the secret is in a log line: %q", l.Data)
			}
		}
	}
	im := testenv.Pull(t, res.Ref+"@"+res.Digest)
	if got, ok := testenv.ImageFile(t, im, "py.txt"); !ok || got != "2.0.0\n" {
		t.Errorf("/py.txt = %q (present %v), want the private package's version", got, ok)
	}
	raw, _ := im.RawConfigFile()
	if strings.Contains(string(raw), password) || strings.Contains(string(raw), "private/index-url") {
		t.Error("the image config holds the secret or its source")
	}
	cfg, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cfg.Config.Env {
		if strings.HasPrefix(e, "PIP_INDEX_URL=") {
			t.Errorf("the image's env sets the secret's variable: %s", e)
		}
	}
	layers, err := im.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		dt, _ := io.ReadAll(rc)
		rc.Close()
		if strings.Contains(string(dt), password) {
			t.Errorf("the secret is in layer %d", i)
		}
	}
}
