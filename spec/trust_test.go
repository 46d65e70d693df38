package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// want is one field error a bad spec must produce.
type want struct {
	file  string // relative to the fixture folder
	line  int    // 0: not checked
	field string
	msg   string // a substring of the message
}

// trustCase is a spec folder with symlinks; "@outside" in a link target is
// replaced by a folder outside the spec's folder holding a file "secret".
type trustCase struct {
	name  string
	files map[string]string
	links map[string]string // link path → target
	want  []want
}

// build writes the case into a fresh folder and returns it.
func (tc trustCase) build(t *testing.T) string {
	t.Helper()
	dir := fixture(t, tc.files)
	outside := fixture(t, map[string]string{"secret": "root:x:0:0:the host's secret\n", "sub/req.txt": "numpy\n"})
	for link, target := range tc.links {
		target = strings.ReplaceAll(target, "@outside", outside)
		p := filepath.Join(dir, filepath.FromSlash(link))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// fieldErrors flattens an error into its field errors.
func fieldErrors(err error) []*FieldError {
	var out []*FieldError
	var es Errors
	var fe *FieldError
	switch {
	case errors.As(err, &es):
		out = append(out, es...)
	case errors.As(err, &fe):
		out = append(out, fe)
	}
	return out
}

// checkWants checks that err holds every wanted field error; their
// files are named relative to dir (a root's files are relative: dir "").
func checkWants(t *testing.T, dir string, err error, wants []want) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not match ErrInvalid", err)
	}
	got := fieldErrors(err)
	for _, w := range wants {
		found := false
		for _, fe := range got {
			if fe.File == filepath.Join(dir, filepath.FromSlash(w.file)) && (w.line == 0 || fe.Line == w.line) &&
				fe.Field == w.field && strings.Contains(fe.Msg, w.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("want %s:%d: %s: ...%s...; got:\n%v", w.file, w.line, w.field, w.msg, err)
		}
	}
	if strings.Contains(err.Error(), "the host's secret") {
		t.Errorf("error shows the content of a file outside the spec's folder: %v", err)
	}
}

// runTrustCases loads each case as the CLI does and through a root at
// its folder, as a server does: both refuse it the same way.
func runTrustCases(t *testing.T, cases []trustCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.build(t)
			checkWants(t, dir, loadErr(t, dir, "s.yaml"), tc.want)
			checkWants(t, "", loadRootErr(t, dir, "s.yaml"), tc.want)
		})
	}
}

const reqSpec = "name: a\nrequirements: reqs.txt\n"

// TestSpecReadsOnlyItsFolder: requirements, secret sources, copy and
// source_root are relative paths inside the spec's folder, and no symlink
// on the way leads out of it.
func TestSpecReadsOnlyItsFolder(t *testing.T) {
	runTrustCases(t, []trustCase{
		// Absolute paths.
		{name: "requirements absolute", files: map[string]string{"s.yaml": "name: a\nrequirements: /etc/passwd\n"},
			want: []want{{"s.yaml", 2, "requirements", "not absolute"}}},
		{name: "secret source absolute", files: map[string]string{"s.yaml": "name: a\npip_secret_mounts:\n  - [/etc/shadow, /root/.netrc]\n"},
			want: []want{{"s.yaml", 0, "pip_secret_mounts[0]", "not absolute"}}},
		{name: "source_root absolute", files: map[string]string{"s.yaml": "name: a\nsource_root: /etc\n"},
			want: []want{{"s.yaml", 2, "source_root", "not absolute"}}},
		{name: "requirements drive letter", files: map[string]string{"s.yaml": "name: a\nrequirements: 'C:\\x.txt'\n"},
			want: []want{{"s.yaml", 2, "requirements", "not absolute"}}},
		// .. escapes.
		{name: "requirements ..", files: map[string]string{"s.yaml": "name: a\nrequirements: ../reqs.txt\n"},
			want: []want{{"s.yaml", 2, "requirements", "climbs out"}}},
		{name: "requirements .. after a folder", files: map[string]string{"s.yaml": "name: a\nrequirements: sub/../../reqs.txt\n", "sub/x": ""},
			want: []want{{"s.yaml", 2, "requirements", "climbs out"}}},
		{name: "secret source ..", files: map[string]string{"s.yaml": "name: a\npip_secret_mounts: [[../netrc, /root/.netrc]]\n"},
			want: []want{{"s.yaml", 2, "pip_secret_mounts[0]", "climbs out"}}},
		{name: "source_root ..", files: map[string]string{"s.yaml": "name: a\nsource_root: ..\n"},
			want: []want{{"s.yaml", 2, "source_root", "climbs out"}}},
		// Symlinks that lead outside, as the last component or on the way.
		{name: "requirements is a symlink to /etc/passwd", files: map[string]string{"s.yaml": reqSpec},
			links: map[string]string{"reqs.txt": "/etc/passwd"},
			want:  []want{{"s.yaml", 2, "requirements", "leads outside the spec file's folder through the symlink reqs.txt -> /etc/passwd"}}},
		{name: "requirements is a relative symlink out", files: map[string]string{"s.yaml": reqSpec},
			links: map[string]string{"reqs.txt": "../../../../../../../../etc/passwd"},
			want:  []want{{"s.yaml", 2, "requirements", "leads outside"}}},
		{name: "requirements under a symlinked folder", files: map[string]string{"s.yaml": "name: a\nrequirements: lib/sub/req.txt\n"},
			links: map[string]string{"lib": "@outside"},
			want:  []want{{"s.yaml", 2, "requirements", "through the symlink lib ->"}}},
		{name: "requirements under a symlinked folder deeper down", files: map[string]string{"s.yaml": "name: a\nrequirements: a/b/sub/req.txt\n", "a/x": ""},
			links: map[string]string{"a/b": "@outside"},
			want:  []want{{"s.yaml", 2, "requirements", "through the symlink a/b ->"}}},
		{name: "secret source is a symlink out", files: map[string]string{"s.yaml": "name: a\npip_secret_mounts: [[netrc, /root/.netrc]]\n"},
			links: map[string]string{"netrc": "@outside/secret"},
			want:  []want{{"s.yaml", 2, "pip_secret_mounts[0]", "leads outside"}}},
		{name: "secret source under a symlinked folder", files: map[string]string{"s.yaml": "name: a\npip_secret_mounts: [[conf/secret, /root/.netrc]]\n"},
			links: map[string]string{"conf": "@outside"},
			want:  []want{{"s.yaml", 2, "pip_secret_mounts[0]", "through the symlink conf ->"}}},
		{name: "copy under a symlinked folder", files: map[string]string{"s.yaml": "name: a\ncopy: [etc/passwd]\n"},
			links: map[string]string{"etc": "/etc"},
			want:  []want{{"s.yaml", 2, "copy[0]", "through the symlink etc -> /etc"}}},
		{name: "copy is a symlink out", files: map[string]string{"s.yaml": "name: a\ncopy: [host]\n"},
			links: map[string]string{"host": "@outside"},
			want:  []want{{"s.yaml", 2, "copy[0]", "leads outside"}}},
		{name: "source_root is a symlink out", files: map[string]string{"s.yaml": "name: a\nsource_root: src\n"},
			links: map[string]string{"src": "@outside"},
			want:  []want{{"s.yaml", 2, "source_root", "leads outside"}}},
		{name: "source_root under a symlinked folder", files: map[string]string{"s.yaml": "name: a\nsource_root: up/sub\n"},
			links: map[string]string{"up": "@outside"},
			want:  []want{{"s.yaml", 2, "source_root", "through the symlink up ->"}}},
		// Secret sources must be there and readable.
		{name: "secret source missing", files: map[string]string{"s.yaml": "name: a\npip_secret_mounts: [[pip.conf, /etc/pip.conf]]\n"},
			want: []want{{"s.yaml", 2, "pip_secret_mounts[0]", "pip.conf does not exist"}}},
		{name: "second secret source missing", files: map[string]string{"s.yaml": "name: a\npip_secret_mounts:\n  - [pip.conf, /etc/pip.conf]\n  - [netrc, /root/.netrc]\n", "pip.conf": "x"},
			want: []want{{"s.yaml", 0, "pip_secret_mounts[1]", "netrc does not exist"}}},
		{name: "secret source is a folder", files: map[string]string{"s.yaml": "name: a\npip_secret_mounts: [[conf, /etc/pip.conf]]\n", "conf/x": ""},
			want: []want{{"s.yaml", 2, "pip_secret_mounts[0]", "not a regular file"}}},
		{name: "secret source is a dangling symlink", files: map[string]string{"s.yaml": "name: a\npip_secret_mounts: [[netrc, /root/.netrc]]\n"},
			links: map[string]string{"netrc": "gone"},
			want:  []want{{"s.yaml", 2, "pip_secret_mounts[0]", "does not exist"}}},
		{name: "copy of a secret file", files: map[string]string{"s.yaml": "name: a\ncopy: [netrc]\npip_secret_mounts: [[netrc, /root/.netrc]]\n", "netrc": "machine x\n"},
			want: []want{{"s.yaml", 2, "copy[0]", "is a pip secret file"}}},
	})
}

// TestRequirementsFiles: every line of a requirements file and of the
// files it includes is checked; problems name the file and line that hold
// them, with field "requirements".
func TestRequirementsFiles(t *testing.T) {
	req := func(content string, more ...string) map[string]string {
		m := map[string]string{"s.yaml": reqSpec, "reqs.txt": content}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	runTrustCases(t, []trustCase{
		// Included files that escape.
		{name: "-r absolute", files: req("numpy\n-r /etc/passwd\n"),
			want: []want{{"reqs.txt", 2, "requirements", "not absolute"}}},
		{name: "-r ..", files: req("-r ../../etc/passwd\n"),
			want: []want{{"reqs.txt", 1, "requirements", "climbs out"}}},
		{name: "-r .. from a sub folder", files: map[string]string{"s.yaml": "name: a\nrequirements: sub/reqs.txt\n", "sub/reqs.txt": "x\n-r ../../outside.txt\n"},
			want: []want{{"sub/reqs.txt", 2, "requirements", "climbs out"}}},
		{name: "--requirement= through a symlinked folder", files: req("--requirement=lib/sub/req.txt\n"),
			links: map[string]string{"lib": "@outside"},
			want:  []want{{"reqs.txt", 1, "requirements", "through the symlink lib ->"}}},
		{name: "-c symlink to /etc/passwd", files: req("-c pins.txt\n"),
			links: map[string]string{"pins.txt": "/etc/passwd"},
			want:  []want{{"reqs.txt", 1, "requirements", "leads outside"}}},
		{name: "nested include escapes", files: req("-r a.txt\n", "a.txt", "x\n\n--constraint ../pins.txt\n"),
			want: []want{{"a.txt", 3, "requirements", "climbs out"}}},
		{name: "-r a URL", files: req("-r https://example.com/reqs.txt\n"),
			want: []want{{"reqs.txt", 1, "requirements", "not URLs"}}},
		{name: "-r with an environment variable", files: req("-r ${HOME}/reqs.txt\n"),
			want: []want{{"reqs.txt", 1, "requirements", "no ${VAR}"}}},
		// Cycles.
		{name: "-r cycle", files: req("-r a.txt\n", "a.txt", "-r b.txt\n", "b.txt", "x\n-r a.txt\n"),
			want: []want{{"b.txt", 2, "requirements", "includes itself: a.txt -> b.txt -> a.txt"}}},
		{name: "-r itself", files: req("x\n-r ./reqs.txt\n"),
			want: []want{{"reqs.txt", 2, "requirements", "includes itself"}}},
		// Unreadable included files.
		{name: "-r missing file", files: req("-r nothere.txt\n"),
			want: []want{{"reqs.txt", 1, "requirements", "nothere.txt does not exist"}}},
		{name: "-c a folder", files: req("x\n-c conf\n", "conf/a", ""),
			want: []want{{"reqs.txt", 2, "requirements", "not a regular file"}}},
		{name: "included file not UTF-8", files: req("-r a.txt\n", "a.txt", "x\xff\n"),
			want: []want{{"a.txt", 0, "requirements", "not UTF-8"}}},
		// file: URLs and local paths.
		{name: "direct reference file: URL", files: req("numpy\npkg @ file:///tmp/pkg.whl\n"),
			want: []want{{"reqs.txt", 2, "requirements", "file: URLs"}}},
		{name: "--find-links file: URL", files: req("--find-links file:///tmp/wheels\n"),
			want: []want{{"reqs.txt", 1, "requirements", "local paths and file: URLs are not allowed"}}},
		{name: "-f local path", files: req("-f ./wheels\n"),
			want: []want{{"reqs.txt", 1, "requirements", "local paths and file: URLs are not allowed"}}},
		{name: "-i file: URL", files: req("-i file:///srv/simple\n"),
			want: []want{{"reqs.txt", 1, "requirements", "expected an http(s) URL"}}},
		{name: "local path requirement", files: req("./pkg\n"),
			want: []want{{"reqs.txt", 1, "requirements", "local path"}}},
		{name: "absolute path requirement", files: req("x\n/opt/pkg\n"),
			want: []want{{"reqs.txt", 2, "requirements", "local path"}}},
		{name: "local archive", files: req("pkg-1.0-py3-none-any.whl\n"),
			want: []want{{"reqs.txt", 1, "requirements", "local archive"}}},
		// Editable installs from local paths.
		{name: "-e .", files: req("-e .\n"),
			want: []want{{"reqs.txt", 1, "requirements", "only version control URLs"}}},
		{name: "--editable=./pkg", files: req("--editable=./pkg\n"),
			want: []want{{"reqs.txt", 1, "requirements", "only version control URLs"}}},
		{name: "-e file: URL", files: req("-e file:///src/pkg\n"),
			want: []want{{"reqs.txt", 1, "requirements", "only version control URLs"}}},
		{name: "-e git+file", files: req("-e git+file:///src/repo#egg=x\n"),
			want: []want{{"reqs.txt", 1, "requirements", "file: URLs"}}},
		// Credentials.
		{name: "--index-url with credentials", files: req("--index-url https://user:pass@example.com/simple\n"),
			want: []want{{"reqs.txt", 1, "requirements", "must not carry credentials"}}},
		{name: "--extra-index-url with a token", files: req("--extra-index-url=https://tok@example.com/simple\n"),
			want: []want{{"reqs.txt", 1, "requirements", "must not carry credentials"}}},
		{name: "direct reference with credentials", files: req("pkg @ https://user:pass@example.com/pkg.whl\n"),
			want: []want{{"reqs.txt", 1, "requirements", "must not carry credentials"}}},
		{name: "editable with credentials", files: req("-e git+https://user:pass@github.com/o/r#egg=r\n"),
			want: []want{{"reqs.txt", 1, "requirements", "must not carry credentials"}}},
		// Unknown and misplaced options.
		{name: "--user", files: req("--user\n"),
			want: []want{{"reqs.txt", 1, "requirements", "unknown or unsupported option --user"}}},
		{name: "--target", files: req("x\n--target /tmp\n"),
			want: []want{{"reqs.txt", 2, "requirements", "unknown or unsupported option --target"}}},
		{name: "--global-option", files: req("pkg --global-option=--x\n"),
			want: []want{{"reqs.txt", 1, "requirements", "unknown or unsupported option --global-option"}}},
		{name: "abbreviated option", files: req("--req other.txt\n"),
			want: []want{{"reqs.txt", 1, "requirements", "written in full"}}},
		{name: "unknown short option", files: req("-X\n"),
			want: []want{{"reqs.txt", 1, "requirements", "unknown or unsupported option -X"}}},
		{name: "file option on a requirement line", files: req("pkg==1 --index-url https://example.com/simple\n"),
			want: []want{{"reqs.txt", 1, "requirements", "put it on a line of its own"}}},
		{name: "--hash alone", files: req("--hash=sha256:abcd\n"),
			want: []want{{"reqs.txt", 1, "requirements", "belongs on a requirement's line"}}},
		{name: "bad --hash", files: req("pkg==1 --hash=md5:abcd\n"),
			want: []want{{"reqs.txt", 1, "requirements", "sha256"}}},
		{name: "option without its value", files: req("-r\n"),
			want: []want{{"reqs.txt", 1, "requirements", "--requirement needs a value"}}},
		// Malformed requirements.
		{name: "not PEP 508", files: req("numpy\n\nnumpy===\n"),
			want: []want{{"reqs.txt", 3, "requirements", "not a PEP 508 requirement"}}},
		{name: "shell in a marker", files: req("x; $(id)\n"),
			want: []want{{"reqs.txt", 1, "requirements", "not a PEP 508 requirement"}}},
		{name: "continued line keeps its first line number", files: req("# c\nnumpy \\\n  >=1 \\\n  --bogus\n"),
			want: []want{{"reqs.txt", 2, "requirements", "--bogus"}}},
		{name: "every bad line is reported", files: req("a===\nok\n--user\n-e .\n"),
			want: []want{{"reqs.txt", 1, "requirements", "PEP 508"}, {"reqs.txt", 3, "requirements", "--user"}, {"reqs.txt", 4, "requirements", "-e"}}},
	})
}

// TestRequirementsUnreadable: an included file that cannot be read is an
// error naming the line that includes it.
func TestRequirementsUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Log("running as root: file permissions do not stop reads; the folder variant in TestRequirementsFiles covers this class")
		return
	}
	dir := fixture(t, map[string]string{"s.yaml": reqSpec, "reqs.txt": "x\n-r a.txt\n", "a.txt": "y\n"})
	if err := os.Chmod(filepath.Join(dir, "a.txt"), 0); err != nil {
		t.Fatal(err)
	}
	checkWants(t, dir, loadErr(t, dir, "s.yaml"), []want{{"reqs.txt", 2, "requirements", "permission denied"}})
}

// TestRequirementsAccepted: what pip allows in a requirements file, and
// ispec keeps, loads.
func TestRequirementsAccepted(t *testing.T) {
	dir := fixture(t, map[string]string{
		"s.yaml": "name: a\nrequirements: reqs/main.txt\n",
		"reqs/main.txt": `# comment
--index-url https://pypi.example.com/simple
--extra-index-url=https://extra.example.com/simple
-f https://example.com/wheels/
--prefer-binary
--only-binary :all:
--pre
--require-hashes
--trusted-host example.com
-r base.txt
--requirement=../common/more.txt
-c ../pins.txt
numpy>=1.26,<2 ; python_version >= "3.9"  # trailing comment
requests[socks]==2.32.3 \
    --hash=sha256:70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6 \
    --hash=sha256:55365417734eb18255590a9ff9eb97e9e1da868d4ccd6402399eaf68af20a760
pkg @ https://example.com/pkg-1.0-py3-none-any.whl
build --config-settings=key=value
-e git+https://github.com/org/repo.git#egg=repo
other @ git+ssh://git@github.com/org/other.git
`,
		"reqs/base.txt":   "pyyaml==6.0.2\n",
		"common/more.txt": "-c ../pins.txt\nattrs\n",
		"pins.txt":        "numpy==1.26.4\n",
	})
	img := load(t, dir, "s.yaml")
	var files []string
	for _, e := range img.Requirements.Entries {
		if e.Kind == KindFile {
			files = append(files, e.Path)
		}
	}
	if got, want := strings.Join(files, " "), "common/more.txt pins.txt reqs/base.txt reqs/main.txt"; got != want {
		t.Errorf("requirements tree files %q, want %q", got, want)
	}
	if img.RequirementsFile != "reqs/main.txt" {
		t.Errorf("RequirementsFile = %q", img.RequirementsFile)
	}
	doc := string(img.Document)
	for _, w := range []string{`"path":"../common/more.txt"`, `"path":"../pins.txt"`, `"path":"base.txt"`, `"file":"sha256:`} {
		if !strings.Contains(doc, w) {
			t.Errorf("document %s lacks %s", doc, w)
		}
	}
}

// TestRequirementsSymlinkInside: a symlink that stays inside the spec's
// folder is followed, and includes resolve from the path as written (as
// pip resolves them).
func TestRequirementsSymlinkInside(t *testing.T) {
	tc := trustCase{files: map[string]string{"s.yaml": reqSpec, "real/reqs.txt": "-r base.txt\n", "base.txt": "numpy\n", "real/base.txt": "not this one\n"},
		links: map[string]string{"reqs.txt": "real/reqs.txt"}}
	img := load(t, tc.build(t), "s.yaml")
	var files []string
	for _, e := range img.Requirements.Entries {
		if e.Kind == KindFile {
			files = append(files, e.Path)
		}
	}
	if got := strings.Join(files, " "); got != "base.txt reqs.txt" {
		t.Errorf("requirements tree files %q, want base.txt reqs.txt", got)
	}
}

// TestRequirementsTag: a change to any included file changes the tag; a
// requirements file without includes hashes as before (its digest alone).
func TestRequirementsTag(t *testing.T) {
	files := map[string]string{"s.yaml": reqSpec, "reqs.txt": "-r a.txt\n-c c.txt\nx\n", "a.txt": "-r deep/b.txt\n", "deep/b.txt": "y\n", "c.txt": "x==1\n"}
	base := hashOf(t, files, "s.yaml").Tag
	for _, change := range []struct{ file, content string }{
		{"a.txt", "-r deep/b.txt\n\n"},
		{"deep/b.txt", "y==2\n"},
		{"c.txt", "x==2\n"},
	} {
		m := withSpec(files, reqSpec)
		m[change.file] = change.content
		if got := hashOf(t, m, "s.yaml").Tag; got == base {
			t.Errorf("changing %s kept the tag %s", change.file, got)
		}
	}
	m := withSpec(files, reqSpec)
	m["unrelated.txt"] = "z\n"
	if got := hashOf(t, m, "s.yaml").Tag; got != base {
		t.Errorf("a file that is not included changed the tag")
	}
	img := load(t, fixture(t, map[string]string{"s.yaml": reqSpec, "reqs.txt": "x\n"}), "s.yaml")
	d, err := FileDigest(filepath.Join(img.Dir, "reqs.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(img.Document), `"requirements":"`+d+`"`) {
		t.Errorf("document %s: requirements without includes should be the file's digest %s", img.Document, d)
	}
}

// TestSecretsLeftOutOfTrees: a pip secret inside source_root or a copied
// folder is not in the tree (so neither in the image nor the hash), under
// any name that reaches the same file, and Excluded says so.
func TestSecretsLeftOutOfTrees(t *testing.T) {
	files := map[string]string{
		"s.yaml":       "name: a\nsource_root: src\ncopy: [conf]\npip_secret_mounts: [[src/pip.conf, /etc/pip.conf], [conf/netrc, /root/.netrc]]\n",
		"src/main.py":  "print()\n",
		"src/pip.conf": "[global]\nindex-url = https://u:p@example.com/simple\n",
		"conf/a.conf":  "a\n",
		"conf/netrc":   "machine x login u password p\n",
	}
	dir := fixture(t, files)
	// A hard link is the same file under another name.
	if err := os.Link(filepath.Join(dir, "conf", "netrc"), filepath.Join(dir, "src", "netrc-copy")); err != nil {
		t.Fatal(err)
	}
	img := load(t, dir, "s.yaml")
	for _, tr := range append([]*Tree{img.Source}, img.Copies...) {
		for _, e := range tr.Entries {
			if strings.Contains(e.Path, "pip.conf") || strings.Contains(e.Path, "netrc") {
				t.Errorf("secret %s in a tree", e.Path)
			}
		}
	}
	want := []Exclusion{{"copy[0]", "conf/netrc"}, {"source_root", "src/netrc-copy"}, {"source_root", "src/pip.conf"}}
	if len(img.Excluded) != len(want) {
		t.Fatalf("Excluded = %+v, want %+v", img.Excluded, want)
	}
	for i := range want {
		if img.Excluded[i] != want[i] {
			t.Errorf("Excluded[%d] = %+v, want %+v", i, img.Excluded[i], want[i])
		}
	}
	// The tag is the tag of the same spec without the secret files there.
	without := fixture(t, map[string]string{"s.yaml": "name: a\nsource_root: src\ncopy: [conf]\n", "src/main.py": "print()\n", "conf/a.conf": "a\n"})
	if got, w := img.Identity.Tag, load(t, without, "s.yaml").Identity.Tag; got != w {
		t.Errorf("tag %s, want %s (the secrets' tag-free twin)", got, w)
	}
	// The configuration's secret files (the pip netrc) are left out too.
	dir2 := fixture(t, map[string]string{"s.yaml": "name: a\nsource_root: src\n", "src/main.py": "print()\n", "src/.netrc": "machine x\n"})
	img2, err := Load(t.Context(), filepath.Join(dir2, "s.yaml"), Options{SecretFiles: []string{filepath.Join(dir2, "src", ".netrc")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(img2.Excluded) != 1 || img2.Excluded[0].Path != "src/.netrc" {
		t.Errorf("Excluded = %+v, want src/.netrc", img2.Excluded)
	}
}

func TestCopyErrorsNameTheItemAsWritten(t *testing.T) {
	dir := fixture(t, map[string]string{
		"spec.yaml": "name: app\ncopy:\n  - zeta.txt\n  - absent\n",
		"zeta.txt":  "z",
	})
	_, err := Load(t.Context(), filepath.Join(dir, "spec.yaml"), Options{})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "copy[1]" || fe.Line != 4 {
		t.Errorf("err = %v, want copy[1] on line 4 (the list is sorted to hash it, not to report it)", err)
	}
}
