package spec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBadInput: every bad spec gets an error that names the file, the field
// (and line where known) and what was expected; never a panic or a hang.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		file  string
		want  []string // substrings of the error
	}{
		{"unknown field with suggestion", map[string]string{"s.yaml": "name: a\npackges: [x]\n"}, "s.yaml",
			[]string{"s.yaml:2", `unknown field "packges"`, `did you mean "packages"`}},
		{"wrong type", map[string]string{"s.yaml": "name: a\npackages: numpy\n"}, "s.yaml",
			[]string{"s.yaml:2", "packages", "expected a list of strings, found a string"}},
		{"map for a string", map[string]string{"s.yaml": "name: {a: b}\n"}, "s.yaml",
			[]string{"s.yaml:1", "name", "expected a string, found a mapping"}},
		{"apt shell metacharacters", map[string]string{"s.yaml": "name: a\napt_packages: [\"jq; rm -rf /\"]\n"}, "s.yaml",
			[]string{"s.yaml:2", "apt_packages[0]", "not a Debian package name"}},
		{"apt with space", map[string]string{"s.yaml": "name: a\napt_packages:\n  - curl\n  - \"git jq\"\n"}, "s.yaml",
			[]string{"s.yaml:4", "apt_packages[1]"}},
		{"apt command substitution", map[string]string{"s.yaml": "name: a\napt_packages: [\"$(id)\"]\n"}, "s.yaml",
			[]string{"apt_packages[0]"}},
		{"pip not PEP 508", map[string]string{"s.yaml": "name: a\npackages: [\"numpy===\", \"x; $(id)\"]\n"}, "s.yaml",
			[]string{"packages[0]", "packages[1]", "PEP 508"}},
		{"pip option as a package", map[string]string{"s.yaml": "name: a\npackages: [\"--index-url=http://evil\"]\n"}, "s.yaml",
			[]string{"packages[0]", "pip_extra_args"}},
		{"env name with =", map[string]string{"s.yaml": "name: a\nenv: {\"A=B\": x}\n"}, "s.yaml",
			[]string{"s.yaml:2", `env.A=B`, "environment variable name"}},
		{"env name with space", map[string]string{"s.yaml": "name: a\nenv:\n  \"MY VAR\": x\n"}, "s.yaml",
			[]string{"s.yaml:3", "env.MY VAR"}},
		{"copy absolute", map[string]string{"s.yaml": "name: a\ncopy: [/etc/passwd]\n"}, "s.yaml",
			[]string{"copy[0]", "not absolute"}},
		{"copy climbs out", map[string]string{"s.yaml": "name: a\ncopy: [app/../../secret]\n"}, "s.yaml",
			[]string{"copy[0]", "climbs out"}},
		{"copy missing", map[string]string{"s.yaml": "name: a\ncopy: [nothere]\n"}, "s.yaml",
			[]string{"s.yaml:2", "copy[0]", "nothere does not exist"}},
		{"requirements missing", map[string]string{"s.yaml": "name: a\nrequirements: req.txt\n"}, "s.yaml",
			[]string{"s.yaml:2", "requirements", "req.txt does not exist"}},
		{"empty name", map[string]string{"s.yaml": "name: \"\"\npackages: [x]\n"}, "s.yaml",
			[]string{"s.yaml:1", "name", "is empty"}},
		{"blank name", map[string]string{"s.yaml": "name: \"  \"\npackages: [x]\n"}, "s.yaml",
			[]string{"s.yaml:1", "name", "is empty"}},
		{"registry bad port", map[string]string{"s.yaml": "name: a\nregistry: localhost:99999\n"}, "s.yaml",
			[]string{"registry", "invalid port"}},
		{"nested cycle", map[string]string{"a.yaml": "name: a\nbase_image: {spec: b.yaml}\n", "b.yaml": "name: b\nbase_image: {spec: a.yaml}\n"}, "a.yaml",
			[]string{"cycle", "a.yaml", "b.yaml"}},
		{"nested self", map[string]string{"a.yaml": "name: a\nbase_image: {spec: ./a.yaml}\n"}, "a.yaml",
			[]string{"cycle"}},
		{"python_version boolean", map[string]string{"s.yaml": "name: a\npython_version: yes\n"}, "s.yaml",
			[]string{"python_version", "boolean"}},
		{"bad platform", map[string]string{"s.yaml": "name: a\nplatform: amd64\n"}, "s.yaml",
			[]string{"platform[0]", "os/arch"}},
		{"index with credentials", map[string]string{"s.yaml": "name: a\npip_index: https://user:pw@example.com/simple\n"}, "s.yaml",
			[]string{"s.yaml:2", "pip_index", "carries credentials", "pip-netrc"}},
		{"tag_format without hash", map[string]string{"s.yaml": "name: a\ntag_format: latest\n"}, "s.yaml",
			[]string{"tag_format", "{spec_hash}"}},
		{"cuda unmappable", map[string]string{"s.yaml": "name: a\ncuda: \"12.4\"\n"}, "s.yaml",
			[]string{"cuda", "full version"}},
		{"not a mapping", map[string]string{"s.yaml": "- a\n- b\n"}, "s.yaml",
			[]string{"s.yaml:1", "expected a mapping"}},
		{"YAML syntax", map[string]string{"s.yaml": "name: [a\n"}, "s.yaml",
			[]string{"s.yaml", "parsing YAML"}},
		{"duplicate key", map[string]string{"s.yaml": "name: a\nname: b\n"}, "s.yaml",
			[]string{"appears twice"}},
		{"JSON unknown field", map[string]string{"s.json": "{\"name\": \"a\",\n \"envv\": {}}"}, "s.json",
			[]string{"s.json:2", `did you mean "env"`}},
		{"TOML wrong type", map[string]string{"s.toml": "name = \"a\"\napt_packages = \"jq\"\n"}, "s.toml",
			[]string{"s.toml:2", "apt_packages", "expected a list"}},
		{"spec file missing", map[string]string{"x": ""}, "s.yaml", []string{"s.yaml", "does not exist"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := loadErr(t, fixture(t, tc.files), tc.file)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestUnquotedPythonVersion(t *testing.T) {
	for _, f := range []struct{ file, text string }{
		{"s.yaml", "name: a\npython_version: 3.10\n"},
		{"s.json", `{"name": "a", "python_version": 3.10}`},
		{"s.toml", "name = \"a\"\npython_version = 3.10\n"},
	} {
		img := load(t, fixture(t, map[string]string{f.file: f.text}), f.file)
		if got := img.Spec.PythonVersion; got != "3.10" {
			t.Errorf("%s: python_version = %q, want \"3.10\"", f.file, got)
		}
	}
}

// TestBoundedWork: huge and deeply nested documents fail fast.
func TestBoundedWork(t *testing.T) {
	cases := map[string]string{
		"10 MB file":        "name: a\ncommands:\n" + strings.Repeat("  - echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 10<<20/45),
		"deep flow nesting": "name: a\nx: " + strings.Repeat("[", 500_000) + strings.Repeat("]", 500_000) + "\n",
		"deep block nesting": func() string {
			var b strings.Builder
			b.WriteString("name: a\nenv:\n")
			for i := 0; i < 1200; i++ {
				b.WriteString(strings.Repeat(" ", i+2) + "k:\n")
			}
			return b.String()
		}(),
		"alias bomb": "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nname: a\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "s.yaml")
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, err := Load(ctx, p, Options{})
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "s.yaml") {
				t.Errorf("error %q should be an invalid-spec error naming the file", err)
			}
			t.Logf("%v after %v", err, time.Since(start))
		})
	}
}
