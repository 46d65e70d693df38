package assemble_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/internal/assemble"
)

// cli is the settings of the CLI's pipeline with a cache dir and a
// BuildKit that is never dialled (connections are made on first build).
func cli(t *testing.T) assemble.Settings {
	return assemble.Settings{
		Lookup:        assemble.LookupSettings{CacheDir: t.TempDir(), UserAgent: "ispec/test"},
		BuildkitAddrs: "unix:///nonexistent/buildkitd.sock",
		Version:       "test",
	}
}

func TestNewRefusesBadSettingsNamingThem(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "netrc")
	for _, tc := range []struct {
		name string
		edit func(*assemble.Settings)
		want string
	}{
		{"a CLI pipeline without a cache dir", func(s *assemble.Settings) { s.Lookup.CacheDir = "" }, "no cache dir for build locks"},
		{"a missing pip netrc", func(s *assemble.Settings) { s.PipNetrc = secret }, "pip-netrc: reading " + secret},
		{"a Redis URL that is none", func(s *assemble.Settings) {
			s.Serve = &assemble.ServeSettings{MaxBuilds: 1, MaxQueue: 1, RedisURL: "http://redis.lan"}
		}, "redis-url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := cli(t)
			tc.edit(&s)
			p, err := assemble.New(context.Background(), s)
			if err == nil {
				p.Close()
				t.Fatalf("New: no error, want one saying %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestNewReadsThePipNetrcWithoutShowingIt(t *testing.T) {
	netrc := filepath.Join(t.TempDir(), "netrc")
	if err := os.WriteFile(netrc, []byte("machine pypi.lan login ci password hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := cli(t)
	s.PipNetrc = netrc
	p, err := assemble.New(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := os.Remove(netrc); err != nil {
		t.Fatal(err)
	}
	// Read once at assembly: a file removed afterwards changes nothing,
	// and an unreadable one is named without its contents.
	if _, err := assemble.New(context.Background(), s); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New with the netrc gone: %v, want an error naming the file only", err)
	}
}

func TestServerPipelineReportsCoordination(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s := cli(t)
	s.Lookup.CacheDir = ""
	s.Serve = &assemble.ServeSettings{MaxBuilds: 2, MaxQueue: 4, Registerer: reg}
	p, err := assemble.New(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := p.Stats(); got.Running != 0 || got.Queued != 0 {
		t.Errorf("a new pipeline runs %+v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "ispec_coordination_degraded" {
			found = true
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 0 {
				t.Errorf("ispec_coordination_degraded = %v in process, want 0", v)
			}
		}
	}
	if !found {
		t.Error("no ispec_coordination_degraded metric")
	}
}

func TestLookupWarnsOnceAndAsksTheRegistryWithoutAnIndex(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-folder")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	lk, err := assemble.NewLookup(assemble.LookupSettings{CacheDir: file, Warn: func(f string, a ...any) {
		warnings = append(warnings, fmt.Sprintf(f, a...))
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lk.Checker.(*cache.Remote); !ok {
		t.Errorf("lookup without an index is %T, want the registry itself", lk.Checker)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "local index unavailable") {
		t.Errorf("warnings %q, want one saying the local index is unavailable", warnings)
	}
}

func TestLookupKeepsAnIndexInTheCacheDir(t *testing.T) {
	dir := t.TempDir()
	lk, err := assemble.NewLookup(assemble.LookupSettings{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lk.Checker.(*cache.Cached); !ok {
		t.Errorf("lookup with a cache dir is %T, want the index in front of the registry", lk.Checker)
	}
}
