package server

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseTokens(t *testing.T) {
	type want struct {
		name  string
		admin bool
	}
	for _, c := range []struct {
		name, file string
		want       []want
		err        string // part of the error; "" for none
	}{
		{name: "bare token named by its hash", file: "s3cret\n", want: []want{{name: "token-" + hashPrefix("s3cret")}}},
		{name: "named and admin", file: "ci:abc\nops:def:admin\n", want: []want{{name: "ci"}, {name: "ops", admin: true}}},
		{name: "comments and blank lines", file: "# who may call\n\n  # indented\nci:abc\n\n", want: []want{{name: "ci"}}},
		{name: "BOM, CRLF and trailing spaces", file: "\ufeffci:abc  \r\nops:def:admin\t\r\n", want: []want{{name: "ci"}, {name: "ops", admin: true}}},
		{name: "BOM before a comment", file: "\ufeff# tokens\r\nabc\r\n", want: []want{{name: "token-" + hashPrefix("abc")}}},
		{name: "one name, two tokens (a rotation)", file: "ci:old\nci:new\n", want: []want{{name: "ci"}, {name: "ci"}}},
		{name: "empty file", file: "", want: nil},
		{name: "space inside", file: "ci:ab c\n", err: "line 1: a token has no spaces"},
		{name: "unknown role", file: "\nci:abc:root\n", err: `line 2: role "root"`},
		{name: "empty token", file: "ci:\n", err: "line 1: the token is empty"},
		{name: "too many colons", file: "a:b:admin:c\n", err: "line 1: too many colons"},
		{name: "bad name", file: "c i:abc\n", err: "line 1: a token has no spaces"},
		{name: "name with a slash", file: "ci/x:abc\n", err: `line 1: name "ci/x"`},
		{name: "name of every allowed character", file: "a.b_c@d-9:abc\n", want: []want{{name: "a.b_c@d-9"}}},
		{name: "name of 64 characters", file: strings.Repeat("n", 64) + ":abc\n", want: []want{{name: strings.Repeat("n", 64)}}},
		{name: "name of 65 characters", file: strings.Repeat("n", 65) + ":abc\n", err: `line 1: name "nnn`},
		{name: "name starting with a dash", file: "-ci:abc\n", err: `line 1: name "-ci"`},
		{name: "name with a non-ASCII letter", file: "é:abc\n", err: `line 1: name "é"`},
		{name: "the same token twice", file: "a:abc\nb:abc\n", err: "line 2: the same token as line 1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTokens(strings.NewReader(c.file))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				if strings.Contains(err.Error(), "abc") {
					t.Errorf("the error carries a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d tokens, want %d", len(got), len(c.want))
			}
			for i, w := range c.want {
				if got[i].Name != w.name || got[i].Admin != w.admin {
					t.Errorf("token %d = %s admin %v, want %s admin %v", i, got[i].Name, got[i].Admin, w.name, w.admin)
				}
			}
		})
	}
}

func hashPrefix(tok string) string {
	ts, _ := ParseTokens(strings.NewReader(tok))
	return strings.TrimPrefix(ts[0].Name, "token-")
}

func TestMatchTokenComparesDigests(t *testing.T) {
	tokens, err := ParseTokens(strings.NewReader("a:alpha-token\nb:beta-token:admin\nc:gamma-token\n"))
	if err != nil {
		t.Fatal(err)
	}
	for secret, want := range map[string]string{
		"alpha-token": "a", "beta-token": "b", "gamma-token": "c",
		"": "", "alpha": "", "alpha-token-and-more": "", "ALPHA-TOKEN": "", "gamma-token\n": "",
	} {
		got, ok := matchToken(tokens, secret)
		if ok != (want != "") || got.Name != want {
			t.Errorf("matchToken(%q) = %q %v, want %q", secret, got.Name, ok, want)
		}
	}
	if got, _ := matchToken(tokens, "beta-token"); !got.Admin {
		t.Error("beta-token's admin mark is lost")
	}
	if _, ok := matchToken(nil, "alpha-token"); ok {
		t.Error("no tokens matched")
	}
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// secretDir lays tokens out as Kubernetes mounts a Secret: DIR/tokens ->
// ..data/tokens, ..data -> a folder per version; a rotation swaps ..data.
type secretDir struct {
	t   *testing.T
	dir string
	n   int
}

func (s *secretDir) write(content string) {
	s.t.Helper()
	s.n++
	version := filepath.Join(s.dir, "..v"+strings.Repeat("x", s.n))
	if err := os.Mkdir(version, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(version, "tokens"), []byte(content), 0o400); err != nil {
		s.t.Fatal(err)
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(version), tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
	if s.n == 1 {
		if err := os.Symlink(filepath.Join("..data", "tokens"), filepath.Join(s.dir, "tokens")); err != nil {
			s.t.Fatal(err)
		}
	}
}

func TestTokenFileFollowsARotatedSecret(t *testing.T) {
	sd := &secretDir{t: t, dir: t.TempDir()}
	sd.write("ci:old-token\n")
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	f, err := OpenTokenFile(filepath.Join(sd.dir, "tokens"), WithClock(clock.Now), WithCheckEvery(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	valid := func(secret string) bool {
		tokens, _, _ := f.current()
		_, ok := matchToken(tokens, secret)
		return ok
	}
	if !valid("old-token") {
		t.Fatal("old-token refused before the rotation")
	}
	sd.write("ci:new-token\n")
	if !valid("old-token") {
		t.Error("the file was read again within the check interval")
	}
	clock.Advance(time.Second)
	if valid("old-token") || !valid("new-token") {
		t.Errorf("after the rotation: old-token valid %v, new-token valid %v; want false, true", valid("old-token"), valid("new-token"))
	}

	// A broken rotation refuses every token, until it is fixed.
	sd.write("ci:new token\n")
	clock.Advance(time.Second)
	if _, changed, err := f.current(); !changed || err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("broken file: changed %v, err %v", changed, err)
	}
	clock.Advance(time.Second)
	if valid("new-token") {
		t.Error("a token is valid while the file is broken")
	}
	sd.write("ci:fixed-token\n")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if !valid("fixed-token") {
		t.Error("fixed-token refused after Reload")
	}
}

func TestTokenFileRewrittenInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("a:first-token\n"), 0o600)
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	f, err := OpenTokenFile(path, WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	// Same inode, other size.
	os.WriteFile(path, []byte("a:second-token-longer\n"), 0o600)
	clock.Advance(2 * time.Second)
	tokens, changed, err := f.current()
	if _, ok := matchToken(tokens, "second-token-longer"); !ok || !changed || err != nil {
		t.Errorf("after rewriting in place: changed %v, err %v, new token valid %v", changed, err, ok)
	}
}

func TestOpenTokenFileRefusesAnEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(path, []byte("# nobody yet\n"), 0o600)
	if _, err := OpenTokenFile(path); err == nil || !strings.Contains(err.Error(), "holds no token") {
		t.Errorf("err = %v, want holds no token", err)
	}
	if _, err := OpenTokenFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file was accepted")
	}
}
