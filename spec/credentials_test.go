package spec

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestCredentialsRefused: a secret in any URL of a spec, in any of the
// forms pip, conda and HTTP clients accept, is refused with the file, line
// and field, and the message never repeats the secret.
func TestCredentialsRefused(t *testing.T) {
	const secret = "s3cr3t"
	cases := []struct {
		name, file, text string
		want             []string // file:line and field
	}{
		{"direct reference user:pass", "s.yaml", "name: a\npackages:\n  - requests\n  - \"pkg @ https://me:s3cr3t@example.com/pkg-1.0.tar.gz\"\n", []string{"s.yaml:4", "packages[1]"}},
		{"direct reference token only", "s.yaml", "name: a\npackages: [\"pkg @ https://s3cr3t@example.com/pkg.whl\"]\n", []string{"s.yaml:2", "packages[0]"}},
		{"direct reference git+https token", "s.yaml", "name: a\npackages: [\"pkg @ git+https://s3cr3t@github.com/org/repo@v1\"]\n", []string{"s.yaml:2", "packages[0]"}},
		{"direct reference ssh password", "s.yaml", "name: a\npackages: [\"pkg @ git+ssh://git:s3cr3t@github.com/org/repo\"]\n", []string{"packages[0]"}},
		{"pip_index token only", "s.yaml", "name: a\npip_index: https://s3cr3t@example.com/simple\n", []string{"s.yaml:2", "pip_index"}},
		{"extra index user:pass", "s.yaml", "name: a\npip_extra_index_url:\n  - https://example.com/simple\n  - https://me:s3cr3t@example.com/simple\n", []string{"s.yaml:4", "pip_extra_index_url[1]"}},
		{"pip args --index-url=", "s.yaml", "name: a\npip_extra_args: --index-url=https://me:s3cr3t@h/simple\n", []string{"s.yaml:2", "pip_extra_args"}},
		{"pip args --index-url value", "s.yaml", "name: a\npip_extra_args: --no-deps --index-url https://s3cr3t@h/simple\n", []string{"pip_extra_args"}},
		{"pip args -i value", "s.yaml", "name: a\npip_extra_args: -i https://me:s3cr3t@h/simple\n", []string{"pip_extra_args"}},
		{"pip args -iURL", "s.yaml", "name: a\npip_extra_args: -ihttps://me:s3cr3t@h/simple\n", []string{"pip_extra_args"}},
		{"pip args --extra-index-url quoted", "s.yaml", "name: a\npip_extra_args: \"'--extra-index-url' 'https://s3cr3t@h/simple'\"\n", []string{"pip_extra_args"}},
		{"pip args --find-links", "s.yaml", "name: a\npip_extra_args: --find-links https://me:s3cr3t@h/wheels/\n", []string{"pip_extra_args"}},
		{"pip args -f", "s.yaml", "name: a\npip_extra_args: -f https://me:s3cr3t@h/wheels/\n", []string{"pip_extra_args"}},
		{"pip args long option prefix", "s.yaml", "name: a\npip_extra_args: --extra-index https://me:s3cr3t@h/simple\n", []string{"pip_extra_args"}},
		{"pip args proxy without scheme", "s.yaml", "name: a\npip_extra_args: --proxy me:s3cr3t@proxy.lan:3128\n", []string{"pip_extra_args"}},
		{"pip args proxy=", "s.yaml", "name: a\npip_extra_args: --proxy=http://me:s3cr3t@proxy.lan:3128\n", []string{"pip_extra_args"}},
		{"pip args trusted-host", "s.yaml", "name: a\npip_extra_args: --trusted-host me:s3cr3t@h\n", []string{"pip_extra_args"}},
		{"pip args any URL", "s.yaml", "name: a\npip_extra_args: --config-settings=url=https://me:s3cr3t@h/\n", []string{"pip_extra_args"}},
		{"conda channel URL", "s.yaml", "name: a\nconda_channels: [conda-forge, \"https://me:s3cr3t@conda.example.com/ch\"]\n", []string{"s.yaml:2", "conda_channels[1]"}},
		{"conda channel token", "s.yaml", "name: a\nconda_channels: [\"https://conda.anaconda.org/t/s3cr3t/private\"]\n", []string{"conda_channels[0]", "conda token"}},
		{"env index", "s.yaml", "name: a\nenv:\n  PIP_INDEX_URL: https://me:s3cr3t@h/simple\n", []string{"s.yaml:3", "env.PIP_INDEX_URL"}},
		{"env proxy without scheme", "s.yaml", "name: a\nenv:\n  https_proxy: me:s3cr3t@proxy.lan:3128\n", []string{"s.yaml:3", "env.https_proxy"}},
		{"env index list", "s.yaml", "name: a\nenv: {PIP_EXTRA_INDEX_URL: \"https://h/simple https://s3cr3t@h2/simple\"}\n", []string{"env.PIP_EXTRA_INDEX_URL"}},
		{"env any URL", "s.yaml", "name: a\nenv: {DATABASE: \"postgres://me:s3cr3t@db/x\"}\n", []string{"env.DATABASE"}},
		{"command", "s.yaml", "name: a\ncommands:\n  - echo hi\n  - curl -fsS https://me:s3cr3t@h/x -o /x\n", []string{"s.yaml:4", "commands[1]"}},
		{"label", "s.yaml", "name: a\nlabels: {source: \"https://s3cr3t@github.com/org/repo\"}\n", []string{"labels.source"}},
		{"entrypoint", "s.yaml", "name: a\nentrypoint: [curl, \"https://me:s3cr3t@h/\"]\n", []string{"entrypoint[1]"}},
		{"JSON", "s.json", "{\"name\": \"a\",\n \"packages\": [\n  \"pkg @ https://me:s3cr3t@h/p.whl\"]}", []string{"s.json:3", "packages[0]"}},
		{"TOML", "s.toml", "name = \"a\"\n\npip_extra_index_url = [\"https://s3cr3t@h/simple\"]\n", []string{"s.toml:3", "pip_extra_index_url[0]"}},
		{"TOML env", "s.toml", "name = \"a\"\n[env]\nX = 1\nPIP_PROXY = \"me:s3cr3t@proxy:3128\"\n", []string{"s.toml:4", "env.PIP_PROXY"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := loadErr(t, fixture(t, map[string]string{tc.file: tc.text}), tc.file)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			msg := err.Error()
			for _, w := range append(tc.want, "credentials", "pip-netrc", "pip_secret_mounts") {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("error %q repeats the secret", msg)
			}
		})
	}
}

// TestCredentialsAllowed: URLs without secrets, ssh user names and "@" in
// paths and versions are not credentials.
func TestCredentialsAllowed(t *testing.T) {
	for _, text := range []string{
		"packages: [\"pkg @ git+https://github.com/org/repo@v1.0\"]",
		"packages: [\"pkg @ git+ssh://git@github.com/org/repo@main\"]",
		"packages: [\"pkg @ https://example.com/pkg-1.0.tar.gz#sha256=00\"]",
		"pip_index: https://example.com/simple",
		"pip_extra_args: --index-url https://example.com/simple --trusted-host example.com --proxy proxy.lan:3128 -f ./wheels",
		"conda_channels: [conda-forge, \"https://conda.anaconda.org/conda-forge\"]",
		"env: {PIP_INDEX_URL: \"https://example.com/simple\", HTTPS_PROXY: \"http://proxy.lan:3128\", EMAIL: a@example.com}",
		"labels: {maintainer: team@example.com, source: \"ssh://git@github.com/org/repo\"}",
		"commands: [\"git clone git@github.com:org/repo.git /src\"]",
	} {
		t.Run(text, func(t *testing.T) {
			load(t, fixture(t, map[string]string{"s.yaml": "name: a\n" + text + "\n"}), "s.yaml")
		})
	}
}

func TestMaskCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://me:pw@h/simple":                           "https://***@h/simple",
		"pkg @ https://tok@h/p.whl":                        "pkg @ https://***@h/p.whl",
		"--index-url=https://a:b@h/ -f https://c@h2/x":     "--index-url=https://***@h/ -f https://***@h2/x",
		"--proxy me:pw@proxy:3128":                         "--proxy ***@proxy:3128",
		"https://conda.anaconda.org/t/tok-123/private/x":   "https://conda.anaconda.org/t/***/private/x",
		"git+https://github.com/org/repo@v1":               "git+https://github.com/org/repo@v1",
		"https://h/simple":                                 "https://h/simple",
		"\"https://me:p@ss@h/\"":                           "\"https://***@h/\"",
		"PIP_EXTRA_INDEX_URL=https://h/ https://me:pw@h2/": "PIP_EXTRA_INDEX_URL=https://h/ https://***@h2/",
	} {
		if got := maskCredentials(in); got != want {
			t.Errorf("maskCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoErrorEchoesASecret: messages about other problems of a value that
// holds a URL with credentials do not repeat the secret either.
func TestNoErrorEchoesASecret(t *testing.T) {
	for i, text := range []string{
		"packages: [\"pkg @ https://me:s3cr3t@h/p.whl extra words\"]",
		"pip_index: \"ftp://me:s3cr3t@h/simple\"",
		"base_image: \"https://me:s3cr3t@h/img\"",
		"registry: \"https://me:s3cr3t@ghcr.io/org\"",
		"registry: \"me:s3cr3t@ghcr.io/org\"",
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) { // the test's name is in the file's path
			err := loadErr(t, fixture(t, map[string]string{"s.yaml": "name: a\n" + text + "\n"}), "s.yaml")
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}
