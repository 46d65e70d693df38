package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Env describes the development environment started by `make env-up`
// (scripts/devenv.sh): a BuildKit daemon, a registry on loopback with base
// image fixtures, and a PEP 503 Python index.
type Env struct {
	// Dir is the environment's state directory.
	Dir string
	// BuildkitHost is the BuildKit address, e.g. "unix:///.../buildkitd.sock".
	BuildkitHost string
	// Registry is the registry host, e.g. "127.0.0.1:5000" (plain HTTP).
	Registry string
	// RegistryLog is the registry's log file; see CountManifestPuts.
	RegistryLog string
	// BasePython is a Debian bookworm image with python3, venv and pip.
	BasePython string
	// BaseBusybox is a tiny busybox image.
	BaseBusybox string
	// IndexURL is the Python index, e.g. "http://127.0.0.1:5081/simple".
	IndexURL string
	// IndexWheels is the directory the index serves; wheels written into it
	// (pyindex.WriteWheel) are served at once.
	IndexWheels string
	// IndexLog holds one line per index request.
	IndexLog string
	// BuildkitdLog is the BuildKit daemon's log file.
	BuildkitdLog string
	// Buildctl is the BuildKit client binary matching the daemon, or ""
	// when none is found; see Env.BuildctlPath.
	Buildctl string
	// BuildkitdBin is the buildkitd binary the environment runs; see
	// StartBuildkitd.
	BuildkitdBin string
	// BuildkitdConfig is the daemon's config file (registry settings).
	BuildkitdConfig string
}

// envFile is the JSON written by scripts/devenv.sh up.
type envFile struct {
	BuildkitHost string `json:"BUILDKIT_HOST"`
	Registry     string `json:"ISPEC_TEST_REGISTRY"`
	RegistryLog  string `json:"ISPEC_TEST_REGISTRY_LOG"`
	BasePython   string `json:"ISPEC_TEST_BASE_PYTHON"`
	BaseBusybox  string `json:"ISPEC_TEST_BASE_BUSYBOX"`
	IndexURL     string `json:"ISPEC_TEST_PYPI_INDEX"`
	IndexWheels  string `json:"ISPEC_TEST_PYPI_WHEELS"`
	IndexLog     string `json:"ISPEC_TEST_PYPI_LOG"`
	BuildkitdLog string `json:"ISPEC_TEST_BUILDKITD_LOG"`
	Buildctl     string `json:"ISPEC_TEST_BUILDCTL"`
	BuildkitdBin string `json:"ISPEC_TEST_BUILDKITD_BIN"`
	BuildkitdCfg string `json:"ISPEC_TEST_BUILDKITD_CONFIG"`
}

// Load returns the running development environment. When it is not there
// (never started, stopped, or not answering) the test is skipped with a hint
// to run `make env-up`; when CI is set to a true value, a missing
// environment fails the test instead, because CI must run the end-to-end
// tests.
func Load(t testing.TB) *Env {
	t.Helper()
	External(t)
	env, err := load()
	if err != nil {
		Missing(t, "development environment not available: %v; run `make env-up` (scripts/devenv.sh up) first", err)
		return nil
	}
	return env
}

// StateDir returns the environment's state directory: ISPEC_DEVENV_DIR, or
// .devenv at the repository root (the nearest parent holding go.mod).
func StateDir() (string, error) {
	if d := os.Getenv("ISPEC_DEVENV_DIR"); d != "" {
		return filepath.Abs(d)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, ".devenv"), nil
}

// RepoRoot returns the nearest directory at or above the working directory
// that holds a go.mod file.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}

func load() (*Env, error) {
	dir, err := StateDir()
	if err != nil {
		return nil, err
	}
	p := filepath.Join(dir, "env.json")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var f envFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	for k, v := range map[string]string{
		"BUILDKIT_HOST": f.BuildkitHost, "ISPEC_TEST_REGISTRY": f.Registry,
		"ISPEC_TEST_BASE_PYTHON": f.BasePython, "ISPEC_TEST_BASE_BUSYBOX": f.BaseBusybox,
		"ISPEC_TEST_PYPI_INDEX": f.IndexURL,
	} {
		if v == "" {
			return nil, fmt.Errorf("%s lacks %s", p, k)
		}
	}
	env := &Env{
		Dir: dir, BuildkitHost: f.BuildkitHost, Registry: f.Registry, RegistryLog: f.RegistryLog,
		BasePython: f.BasePython, BaseBusybox: f.BaseBusybox, IndexURL: f.IndexURL,
		IndexWheels: f.IndexWheels, IndexLog: f.IndexLog, BuildkitdLog: f.BuildkitdLog,
		Buildctl: f.Buildctl, BuildkitdBin: f.BuildkitdBin, BuildkitdConfig: f.BuildkitdCfg,
	}
	if env.Buildctl == "" {
		// Environments started before the key existed: buildctl lives next
		// to the running buildkitd.
		env.Buildctl = buildctlNextToDaemon(dir)
	}
	// Env files written before they named the daemon's binary and config:
	// the binary devenv.sh caches, the config next to the daemon's log.
	if env.BuildkitdBin == "" {
		env.BuildkitdBin, _ = cachedBuildkitd()
	}
	if env.BuildkitdConfig == "" && env.BuildkitdLog != "" {
		if p := filepath.Join(filepath.Dir(env.BuildkitdLog), "buildkitd.toml"); fileExists(p) {
			env.BuildkitdConfig = p
		}
	}
	if err := env.reachable(); err != nil {
		return nil, err
	}
	return env, nil
}

// reachable checks cheaply that the registry, the index and the BuildKit
// socket accept connections, so a stale env.json is reported as missing.
func (e *Env) reachable() error {
	dial := func(network, addr, what string) error {
		c, err := net.DialTimeout(network, addr, 2*time.Second)
		if err != nil {
			return fmt.Errorf("%s at %s does not answer: %w", what, addr, err)
		}
		return c.Close()
	}
	if err := dial("tcp", e.Registry, "registry"); err != nil {
		return err
	}
	if host := indexHost(e.IndexURL); host != "" {
		if err := dial("tcp", host, "Python index"); err != nil {
			return err
		}
	}
	if sock, ok := strings.CutPrefix(e.BuildkitHost, "unix://"); ok {
		if err := dial("unix", sock, "buildkitd"); err != nil {
			return err
		}
	}
	return nil
}

func indexHost(u string) string {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	return host
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
