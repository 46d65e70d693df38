package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ispec-dev/ispec/cache"
)

// assertEmptyDir fails when dir holds anything: what a refused command
// must leave behind.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s holds %s after a refused command", dir, e.Name())
	}
}

func TestUnknownConfigKeys(t *testing.T) {
	for _, tc := range []struct {
		file, content string
		want          []string
	}{
		{"config.yaml", "regsitry: ghcr.io/x\n", []string{`unknown key "regsitry"`, `did you mean "registry"`}},
		{"config.yaml", "registry: ghcr.io/x\ncache_dir: /tmp/x\n", []string{`unknown key "cache_dir"`, `did you mean "cache-dir"`}},
		{"config.yaml", "buildkit-adr: tcp://x:1\ninsecure-registry: [a]\n", []string{`unknown key "buildkit-adr"`, `did you mean "buildkit-addr"`, `unknown key "insecure-registry"`, `did you mean "insecure-registries"`}},
		{"config.yaml", "progress: plain\n", []string{`unknown key "progress"`, "settings: registry, cache-dir"}},
		{"config.yaml", "registry: {host: ghcr.io}\n", []string{`unknown key "registry.host"`, "takes a value, not a mapping"}},
		{"config.toml", "pip_netrc = \"/x\"\n", []string{`unknown key "pip_netrc"`, `did you mean "pip-netrc"`}},
		{"config.json", `{"base_image": "debian"}`, []string{`unknown key "base_image"`, `did you mean "base-image"`}},
	} {
		t.Run(tc.file+" "+tc.content, func(t *testing.T) {
			cacheDir := filepath.Join(t.TempDir(), "cache")
			isolate(t)
			t.Setenv("ISPEC_CACHE_DIR", cacheDir)
			dir := writeFiles(t, map[string]string{"s.yaml": "name: app\nregistry: 127.0.0.1:1/x\n", tc.file: tc.content})
			cfg := filepath.Join(dir, tc.file)
			for _, args := range [][]string{
				{"tag", "--config", cfg, filepath.Join(dir, "s.yaml")},
				{"build", "--config", cfg, filepath.Join(dir, "s.yaml")},
			} {
				out, errOut, code := run(t, args...)
				if code != exitInvalid || out != "" {
					t.Errorf("%s: exit %d out %q, want 2 and nothing on stdout", args[0], code, out)
				}
				for _, w := range append([]string{"config file " + cfg}, tc.want...) {
					if !strings.Contains(errOut, w) {
						t.Errorf("%s: stderr %q lacks %q", args[0], errOut, w)
					}
				}
			}
			assertEmptyDir(t, cacheDir)
		})
	}
	// Known keys in every format pass.
	isolate(t)
	dir := writeFiles(t, map[string]string{"s.yaml": "name: app\n", "c.yaml": "registry: ghcr.io/x\ncache-dir: " + t.TempDir() + "\ninsecure-registries: [a]\npip-netrc: /n\nbuildkit-addr: tcp://x:1\nbase-image: debian\npython-base: p\ncuda-base: c\n"})
	if out, errOut, code := run(t, "tag", "--config", filepath.Join(dir, "c.yaml"), filepath.Join(dir, "s.yaml")); code != 0 || !strings.HasPrefix(out, "ghcr.io/x/app:") {
		t.Errorf("every known key: exit %d out %q err %q", code, out, errOut)
	}
}

func TestCacheDirNotAFolder(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{"s.yaml": "name: app\nregistry: 127.0.0.1:1/x\n", "afile": "keep"})
	file := filepath.Join(dir, "afile")
	for _, cacheDir := range []string{file, filepath.Join(file, "sub"), filepath.Join(file, "a", "b")} {
		for _, how := range []string{"flag", "env", "config"} {
			for _, command := range []string{"tag", "exists", "build"} {
				args := []string{command, filepath.Join(dir, "s.yaml")}
				switch how {
				case "flag":
					args = append(args, "--cache-dir", cacheDir)
				case "env":
					t.Setenv("ISPEC_CACHE_DIR", cacheDir)
				case "config":
					t.Setenv("ISPEC_CACHE_DIR", "")
					cfg := filepath.Join(t.TempDir(), "c.yaml")
					if err := os.WriteFile(cfg, []byte("cache-dir: "+cacheDir+"\n"), 0o644); err != nil {
						t.Fatal(err)
					}
					args = append(args, "--config", cfg)
				}
				out, errOut, code := run(t, args...)
				if code != exitInvalid || out != "" || !strings.Contains(errOut, "cache dir "+cacheDir) || !strings.Contains(errOut, "--cache-dir") {
					t.Errorf("%s with cache dir %s by %s: exit %d out %q err %q; want 2 naming the cache dir", command, cacheDir, how, code, out, errOut)
				}
				t.Setenv("ISPEC_CACHE_DIR", "")
			}
		}
	}
	if dt, err := os.ReadFile(file); err != nil || string(dt) != "keep" {
		t.Errorf("the file named as cache dir changed: %q, %v", dt, err)
	}
}

func TestUnknownCommandOrFlag(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"bogus"}, []string{`unknown command "bogus" for "ispec"`, "commands: build"}},
		{[]string{"buidl", "x.yaml"}, []string{`unknown command "buidl"`, `did you mean "build"`}},
		{[]string{"exist", "x.yaml"}, []string{`did you mean "exists"`}},
		{[]string{"--bogus"}, []string{"unknown flag: --bogus"}},
		{[]string{"build", "--bogus", "x.yaml"}, []string{"unknown flag: --bogus"}},
		{[]string{"tag", "--jsn", "x.yaml"}, []string{"unknown flag: --jsn"}},
		{[]string{"build", "-z", "x.yaml"}, []string{"unknown shorthand flag: 'z'"}},
		{[]string{"explain", "--files=maybe", "x.yaml"}, []string{"invalid argument"}},
	} {
		out, errOut, code := run(t, tc.args...)
		if code != exitInvalid || out != "" {
			t.Errorf("%q: exit %d out %q; want 2", tc.args, code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%q: stderr %q lacks %q", tc.args, errOut, w)
			}
		}
	}
	if out, _, code := run(t); code != 0 || !strings.Contains(out, "Exit codes:") {
		t.Errorf("ispec alone: exit %d; want 0 and the help", code)
	}
	out, _, code := run(t, "--help")
	for _, w := range []string{"130", "143", "SIGINT", "SIGTERM"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("--help (exit %d) does not document %s", code, w)
		}
	}
}

// localRegistry starts an in-memory registry and returns its host.
func localRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// buildRecords parses build --json output.
func buildRecords(t *testing.T, out string) []buildResult {
	t.Helper()
	var recs []buildResult
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var r buildResult
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("build --json line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// stderrJSON parses stderr that must be JSON lines and returns the lines'
// objects.
func stderrJSON(t *testing.T, errOut string) []map[string]json.RawMessage {
	t.Helper()
	var objs []map[string]json.RawMessage
	for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var o map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &o); err != nil {
			t.Errorf("stderr line is not JSON: %q", l)
			continue
		}
		objs = append(objs, o)
	}
	return objs
}

// errorOf returns the error record among stderr's JSON objects.
func errorOf(t *testing.T, objs []map[string]json.RawMessage) errorRecord {
	t.Helper()
	var rec errorRecord
	found := 0
	for _, o := range objs {
		if raw, ok := o["error"]; ok {
			found++
			if err := json.Unmarshal(raw, &rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d error objects on stderr, want 1", found)
	}
	return rec
}

func TestBuildJSONFailureRecords(t *testing.T) {
	host := localRegistry(t)
	for _, tc := range []struct {
		name    string
		specs   map[string]string
		args    []string // specs in order
		code    int
		records []string // spec: class, "" for a success
	}{
		// The valid spec is still attempted (and finds BuildKit out of
		// reach); the worst class, invalid, makes the exit code.
		{name: "invalid specs among valid ones",
			specs: map[string]string{"ok.yaml": "name: ok\nregistry: " + host + "/team\n", "bad.yaml": "name: bad\npackges: [x]\n", "bad2.yaml": "name: b2\napt_packages: [\"jq; id\"]\n"},
			args:  []string{"ok.yaml", "bad.yaml", "bad2.yaml"}, code: exitInvalid,
			records: []string{"ok.yaml: unavailable", "bad.yaml: invalid", "bad2.yaml: invalid"}},
		{name: "only invalid specs",
			specs: map[string]string{"ok.yaml": "name: ok\n", "bad.yaml": "name: bad\npackges: [x]\n"},
			args:  []string{"ok.yaml", "bad.yaml"}, code: exitInvalid,
			records: []string{"ok.yaml: invalid", "bad.yaml: invalid"}},
		{name: "no registry", specs: map[string]string{"a.yaml": "name: a\nregistry: \"\"\n"}, args: []string{"a.yaml"}, code: exitInvalid,
			records: []string{"a.yaml: invalid"}},
		{name: "buildkit unreachable", specs: map[string]string{"a.yaml": "name: a\nregistry: " + host + "/team\n", "b.yaml": "name: b\nregistry: " + host + "/team\n"},
			args: []string{"a.yaml", "b.yaml"}, code: exitUnavailable, records: []string{"a.yaml: unavailable", "b.yaml: unavailable"}},
		{name: "registry unreachable", specs: map[string]string{"a.yaml": "name: a\nregistry: 127.0.0.1:1/team\n"}, args: []string{"a.yaml"}, code: exitUnavailable,
			records: []string{"a.yaml: unavailable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := isolate(t)
			t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock")
			dir := writeFiles(t, tc.specs)
			var paths []string
			for _, a := range tc.args {
				paths = append(paths, filepath.Join(dir, a))
			}
			for _, progress := range []string{"plain", "json"} {
				out, errOut, code := run(t, append([]string{"build", "--json", "--progress", progress}, paths...)...)
				if code != tc.code {
					t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
				}
				recs := buildRecords(t, out)
				var got []string
				for _, r := range recs {
					if r.Error == nil {
						t.Errorf("record without error for a failed run: %+v", r)
						continue
					}
					if r.Error.Message == "" || r.Digest != "" || r.Built {
						t.Errorf("failure record %+v", r)
					}
					got = append(got, filepath.Base(r.Spec)+": "+r.Error.Class)
				}
				if strings.Join(got, ",") != strings.Join(tc.records, ",") {
					t.Errorf("records %v, want %v", got, tc.records)
				}
				if progress == "json" {
					// One error object per failed spec, in the records' classes.
					var classes []string
					for _, o := range stderrJSON(t, errOut) {
						if raw, ok := o["error"]; ok {
							var rec errorRecord
							if json.Unmarshal(raw, &rec) != nil || rec.Message == "" {
								t.Errorf("stderr error %s", raw)
							}
							classes = append(classes, rec.Class)
						}
					}
					var want []string
					for _, r := range tc.records {
						want = append(want, strings.SplitN(r, ": ", 2)[1])
					}
					slices.Sort(classes)
					slices.Sort(want)
					if !slices.Equal(classes, want) {
						t.Errorf("stderr error classes %v, want %v", classes, want)
					}
				} else if !strings.HasPrefix(errOut, "ispec: ") && !strings.Contains(errOut, "\nispec: ") {
					t.Errorf("stderr %q has no ispec: line", errOut)
				}
			}
			allInvalid := !slices.ContainsFunc(tc.records, func(r string) bool { return !strings.HasSuffix(r, ": invalid") })
			if _, err := os.Stat(filepath.Join(cacheDir, "locks")); allInvalid && err == nil {
				t.Error("an invalid run took a build lock")
			}
			for _, a := range tc.args {
				tagOut, _, _ := run(t, "tag", filepath.Join(dir, a))
				if r, err := name.ParseReference(strings.TrimSpace(tagOut), name.Insecure); err == nil {
					if _, err := remote.Head(r); err == nil {
						t.Errorf("%s was pushed", r)
					}
				}
			}
		})
	}
}

func TestProgressJSONWarnings(t *testing.T) {
	host := localRegistry(t)
	cacheDir := isolate(t)
	t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock")
	// An index that cannot be opened: lookups warn and go on.
	if err := os.MkdirAll(filepath.Join(cacheDir, cache.IndexFile, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := writeFiles(t, map[string]string{"a.yaml": "name: a\nregistry: " + host + "/team\n"})
	_, errOut, code := run(t, "build", "--progress", "json", filepath.Join(dir, "a.yaml"))
	if code != exitUnavailable {
		t.Errorf("exit %d, want 3", code)
	}
	objs := stderrJSON(t, errOut)
	warnings := 0
	for _, o := range objs {
		if raw, ok := o["warning"]; ok {
			var m messageRecord
			if err := json.Unmarshal(raw, &m); err != nil || !strings.Contains(m.Message, "local index") {
				t.Errorf("warning %s", raw)
			}
			warnings++
		}
	}
	if warnings == 0 {
		t.Errorf("no JSON warning on stderr: %q", errOut)
	}
	if rec := errorOf(t, objs); rec.Class != classUnavailable || !strings.Contains(rec.Message, "buildkit is not reachable") {
		t.Errorf("error %+v", rec)
	}
	// The same run without JSON prints lines.
	_, errOut, _ = run(t, "build", "--progress", "plain", filepath.Join(dir, "a.yaml"))
	if !strings.Contains(errOut, "ispec: warning: local index") || !strings.Contains(errOut, "buildkit is not reachable") {
		t.Errorf("plain stderr %q", errOut)
	}
}

func TestExplainFilesEscapesNames(t *testing.T) {
	isolate(t)
	names := []string{"new\nline.txt", "esc\x1b[31mred", "tab\tname", "bell\a", "bad\xffutf8", "\"quoted", "rtl\u202egnp.exe", "plain name.txt", "ünïcode.txt"}
	files := map[string]string{"s.yaml": "name: app\ncopy: [tree]\n"}
	for _, n := range names {
		files[filepath.Join("tree", n)] = "x"
	}
	dir := writeFiles(t, files)
	if err := os.Symlink("target\nwith newline", filepath.Join(dir, "tree", "link")); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, "explain", "--files", filepath.Join(dir, "s.yaml"))
	if code != 0 {
		t.Fatalf("explain --files: exit %d err %q", code, errOut)
	}
	for _, n := range names {
		want := n
		if n != "plain name.txt" && n != "ünïcode.txt" {
			want = strconv.Quote(n)
		}
		if !strings.Contains(out, " "+want+"\n") {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
	if !strings.Contains(out, `link -> "target\nwith newline"`) {
		t.Errorf("symlink target not escaped:\n%s", out)
	}
	for _, bad := range []string{"\x1b", "\a", "\t", "\xff", "\u202e"} {
		if strings.Contains(out, bad) {
			t.Errorf("output holds a raw %q", bad)
		}
	}
	if strings.Contains(out, "new\nline") {
		t.Errorf("a name split a line:\n%s", out)
	}
}

func TestServeRefusesAnOpenAddressWithoutAuth(t *testing.T) {
	isolate(t)
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		_, errOut, code := run(t, "serve", "--listen", addr, "--metrics-listen", "")
		if code != exitInvalid || !strings.Contains(errOut, "needs authentication") {
			t.Errorf("serve --listen %s: exit %d %q, want 2 asking for authentication", addr, code, errOut)
		}
	}
}

func TestServeRefusesPlaintextTokensOnAnOpenAddress(t *testing.T) {
	isolate(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("ci:secret-token\n"), 0o600)
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0"} {
		_, errOut, code := run(t, "serve", "--listen", addr, "--metrics-listen", "", "--token-file", tokens)
		if code != exitInvalid || !strings.Contains(errOut, "plain text") || !strings.Contains(errOut, "TLS") ||
			!strings.Contains(errOut, "--tls-terminated-by-proxy") {
			t.Errorf("serve --listen %s --token-file: exit %d %q, want 2 naming TLS and --tls-terminated-by-proxy", addr, code, errOut)
		}
		if strings.Contains(errOut, "secret-token") {
			t.Errorf("the error carries the token: %q", errOut)
		}
	}
}

func TestClientTokenFileReadsTheServersFormat(t *testing.T) {
	for file, want := range map[string]string{
		"plain-token\n":                      "plain-token",
		"\ufeff# mine\r\nci:named-token\r\n": "named-token",
		"ops:admin-token:admin\nother:x\n":   "admin-token",
		"  spaced-token  \n":                 "spaced-token",
		"# nothing\n\n":                      "",
	} {
		if got := firstToken(file); got != want {
			t.Errorf("firstToken(%q) = %q, want %q", file, got, want)
		}
	}
}
