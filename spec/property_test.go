package spec

import (
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const propBase = `name: app
registry: ghcr.io/org
base_image: python:3.11-slim
python_version: "3.10"
packages: [numpy==1.26.4, pandas==2.2.2, requests==2.32.3, scipy==1.13.1]
apt_packages: [curl, git, jq, libpq5]
env: {A: "1", B: "2", C: "3"}
commands: ["echo one", "echo two"]
copy: [app]
labels: {x: "1", y: "2"}
`

var propFiles = map[string]string{"app/a.py": "A = 1\n", "app/b.py": "B = 2\n", "app/sub/c.txt": "c\n", "netrc": "machine x login y password z\n"}

func withSpec(files map[string]string, specText string) map[string]string {
	out := map[string]string{"spec.yaml": specText}
	for k, v := range files {
		out[k] = v
	}
	return out
}

func hashOf(t *testing.T, files map[string]string, file string) Identity {
	t.Helper()
	return load(t, fixture(t, files), file).Identity
}

// TestSameTag: changes that do not change the image leave the tag alone.
func TestSameTag(t *testing.T) {
	want := hashOf(t, withSpec(propFiles, propBase), "spec.yaml")
	rng := rand.New(rand.NewSource(1))
	shuffle := func(items string) string {
		parts := strings.Split(items, ", ")
		rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		return strings.Join(parts, ", ")
	}
	cases := map[string]string{
		"packages permuted":           strings.Replace(propBase, "numpy==1.26.4, pandas==2.2.2, requests==2.32.3, scipy==1.13.1", shuffle("numpy==1.26.4, pandas==2.2.2, requests==2.32.3, scipy==1.13.1"), 1),
		"apt permuted and duplicated": strings.Replace(propBase, "[curl, git, jq, libpq5]", "[libpq5, jq, git, curl, jq]", 1),
		"package name case":           strings.Replace(propBase, "pandas==2.2.2", "Pandas==2.2.2", 1),
		"env keys reordered":          strings.Replace(propBase, `{A: "1", B: "2", C: "3"}`, `{C: "3", A: "1", B: "2"}`, 1),
		"keys reordered and comments": "# my image\nlabels: {y: \"2\", x: \"1\"}\ncopy: [app]  # the app\n" + strings.Replace(strings.Replace(propBase, "labels: {x: \"1\", y: \"2\"}\n", "", 1), "copy: [app]\n", "", 1),
		"block style lists":           strings.Replace(propBase, "apt_packages: [curl, git, jq, libpq5]", "apt_packages:\n  - curl\n  - git\n  - jq\n  - libpq5", 1),
		"registry changed":            strings.Replace(propBase, "ghcr.io/org", "127.0.0.1:5000", 1),
		"base fully qualified":        strings.Replace(propBase, "python:3.11-slim", "docker.io/library/python:3.11-slim", 1),
		"python_version unquoted":     strings.Replace(propBase, `"3.10"`, "3.10", 1),
		"builder fields":              propBase + "builder: envd\nbuilder_options: {x: y}\nregistry_config: /tmp/x.json\n",
		"default platform named":      propBase + "platform: linux/amd64\n",
		"default workdir named":       propBase + "workdir: /root\n",
		"secret mounts":               propBase + "pip_secret_mounts: [[netrc, /root/.netrc]]\n",
		"secret as env":               propBase + "pip_secret_mounts: [{source: netrc, env: PIP_INDEX_URL}]\n",
		"platform alias":              propBase + "platform: Linux/x86_64\n",
		"requirement spacing":         strings.Replace(propBase, "numpy==1.26.4", "\"NumPy == 1.26.4\"", 1),
		"name and registry case":      strings.Replace(strings.Replace(propBase, "name: app", "name: App", 1), "ghcr.io/org", "GHCR.io/Org", 1),
		"copy mode without source":    propBase + "source_copy_mode: NO_COPY\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			got := hashOf(t, withSpec(propFiles, text), "spec.yaml")
			if got.SpecHash != want.SpecHash || got.Tag != want.Tag {
				t.Errorf("tag changed: got %s, want %s", got.Tag, want.Tag)
			}
		})
	}
	t.Run("a secret inside a copied tree is left out", func(t *testing.T) {
		for _, secret := range []string{"app/.netrc", "app/sub/pip.conf"} {
			files := withSpec(propFiles, propBase+"pip_secret_mounts: [["+secret+", /root/.netrc]]\n")
			files[secret] = "machine x login y password z\n"
			img := load(t, fixture(t, files), "spec.yaml")
			if img.Identity.Tag != want.Tag {
				t.Errorf("%s: tag changed: got %s, want %s", secret, img.Identity.Tag, want.Tag)
			}
			if len(img.Excluded) != 1 || img.Excluded[0] != (Exclusion{Field: "copy[0]", Path: secret}) {
				t.Errorf("%s: Excluded = %+v", secret, img.Excluded)
			}
			for _, e := range img.Copies[0].Entries {
				if "app/"+e.Path == secret {
					t.Errorf("%s is in the copied tree", secret)
				}
			}
		}
	})
	t.Run("name and tag_format keep the spec hash", func(t *testing.T) {
		got := hashOf(t, withSpec(propFiles, strings.Replace(propBase, "name: app", "name: other", 1)+"tag_format: \"{spec_hash}-gpu\"\n"), "spec.yaml")
		if got.SpecHash != want.SpecHash || got.Tag != want.Tag+"-gpu" {
			t.Errorf("got hash %s tag %s; want hash %s tag %s-gpu", got.SpecHash, got.Tag, want.SpecHash, want.Tag)
		}
	})
	t.Run("same spec in JSON and TOML", func(t *testing.T) {
		y := hashOf(t, map[string]string{"s.yaml": "name: a\npython_version: 3.10\npackages: [x]\nenv: {K: v}\n"}, "s.yaml")
		j := hashOf(t, map[string]string{"s.json": `{"name": "a", "python_version": 3.10, "packages": ["x"], "env": {"K": "v"}}`}, "s.json")
		tm := hashOf(t, map[string]string{"s.toml": "name = \"a\"\npython_version = 3.10\npackages = [\"x\"]\n[env]\nK = \"v\"\n"}, "s.toml")
		if y.Tag != j.Tag || y.Tag != tm.Tag {
			t.Errorf("yaml %s, json %s, toml %s: want one tag", y.Tag, j.Tag, tm.Tag)
		}
	})
	t.Run("ignored files", func(t *testing.T) {
		files := withSpec(propFiles, propBase)
		files["app/__pycache__/a.cpython-311.pyc"] = "junk"
		files[".ispecignore"] = "__pycache__/\n"
		files["app/.git/HEAD"] = "ref: main"
		got := load(t, fixture(t, files), "spec.yaml").Identity
		base := withSpec(propFiles, propBase)
		base[".ispecignore"] = "__pycache__/\n"
		if w := hashOf(t, base, "spec.yaml"); got.Tag != w.Tag {
			t.Errorf("ignored files changed the tag")
		}
	})
	t.Run("mtime", func(t *testing.T) {
		dir := fixture(t, withSpec(propFiles, propBase))
		a := load(t, dir, "spec.yaml").Identity
		future := mustStat(t, filepath.Join(dir, "app/a.py")).ModTime().Add(3600e9)
		if err := os.Chtimes(filepath.Join(dir, "app/a.py"), future, future); err != nil {
			t.Fatal(err)
		}
		if b := load(t, dir, "spec.yaml").Identity; a.Tag != b.Tag {
			t.Errorf("mtime changed the tag")
		}
	})
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// TestTagChanges: every change to what the image contains changes the tag.
func TestTagChanges(t *testing.T) {
	want := hashOf(t, withSpec(propFiles, propBase), "spec.yaml")
	specEdits := map[string][2]string{
		"name of a package":  {"scipy==1.13.1", "scipy==1.13.0"},
		"apt package":        {"libpq5", "libpq-dev"},
		"base image":         {"python:3.11-slim", "python:3.12-slim"},
		"python version":     {`"3.10"`, `"3.1"`},
		"env value":          {`A: "1"`, `A: "0"`},
		"command order":      {`["echo one", "echo two"]`, `["echo two", "echo one"]`},
		"label":              {`x: "1"`, `x: "9"`},
		"copy list":          {"copy: [app]", "copy: [app/a.py]"},
		"platform":           {"labels:", "platform: linux/arm64\nlabels:"},
		"second platform":    {"labels:", "platform: [linux/amd64, linux/arm64]\nlabels:"},
		"entrypoint":         {"labels:", "entrypoint: [python]\nlabels:"},
		"entrypoint cleared": {"labels:", "entrypoint: []\nlabels:"},
		"workdir":            {"labels:", "workdir: /srv\nlabels:"},
		"cuda":               {"labels:", "cuda: \"12.4.1\"\nlabels:"},
		"pip index":          {"labels:", "pip_index: http://127.0.0.1:9/simple\nlabels:"},
		"pip args":           {"labels:", "pip_extra_args: --no-deps\nlabels:"},
		"specifier":          {"scipy==1.13.1", "\"scipy>=1.13.1,<2\""},
		"extra":              {"scipy==1.13.1", "\"scipy[dev]==1.13.1\""},
		"marker":             {"scipy==1.13.1", "\"scipy==1.13.1; python_version >= '3.10'\""},
		"platform variant":   {"labels:", "platform: linux/amd64/v3\nlabels:"},
	}
	for name, e := range specEdits {
		t.Run(name, func(t *testing.T) {
			text := strings.Replace(propBase, e[0], e[1], 1)
			if text == propBase {
				t.Fatalf("edit %q did not apply", e[0])
			}
			if got := hashOf(t, withSpec(propFiles, text), "spec.yaml"); got.Tag == want.Tag {
				t.Errorf("tag did not change")
			}
		})
	}
	fileEdits := map[string]func(dir string) error{
		"one byte of a file": func(dir string) error { return os.WriteFile(filepath.Join(dir, "app/a.py"), []byte("A = 2\n"), 0o644) },
		"a new file":         func(dir string) error { return os.WriteFile(filepath.Join(dir, "app/new.py"), nil, 0o644) },
		"a removed file":     func(dir string) error { return os.Remove(filepath.Join(dir, "app/b.py")) },
		"exec bit":           func(dir string) error { return os.Chmod(filepath.Join(dir, "app/a.py"), 0o755) },
		"group write bit":    func(dir string) error { return os.Chmod(filepath.Join(dir, "app/a.py"), 0o664) },
		"folder mode":        func(dir string) error { return os.Chmod(filepath.Join(dir, "app/sub"), 0o700) },
		"symlink target": func(dir string) error {
			return os.Symlink("a.py", filepath.Join(dir, "app/link"))
		},
		"renamed file": func(dir string) error {
			return os.Rename(filepath.Join(dir, "app/b.py"), filepath.Join(dir, "app/b2.py"))
		},
	}
	for name, edit := range fileEdits {
		t.Run(name, func(t *testing.T) {
			dir := fixture(t, withSpec(propFiles, propBase))
			if err := edit(dir); err != nil {
				t.Fatal(err)
			}
			if got := load(t, dir, "spec.yaml").Identity; got.Tag == want.Tag {
				t.Errorf("tag did not change")
			}
		})
	}
	t.Run("requirements content", func(t *testing.T) {
		a := hashOf(t, map[string]string{"s.yaml": "name: a\nrequirements: r.txt\n", "r.txt": "x==1\n"}, "s.yaml")
		b := hashOf(t, map[string]string{"s.yaml": "name: a\nrequirements: r.txt\n", "r.txt": "x==2\n"}, "s.yaml")
		if a.Tag == b.Tag {
			t.Errorf("requirements content did not change the tag")
		}
	})
	t.Run("nested parent change reaches the child", func(t *testing.T) {
		child := "name: child\nbase_image: {spec: base.yaml}\n"
		a := hashOf(t, map[string]string{"base.yaml": "name: base\napt_packages: [jq]\n", "child.yaml": child}, "child.yaml")
		b := hashOf(t, map[string]string{"base.yaml": "name: base\napt_packages: [curl]\n", "child.yaml": child}, "child.yaml")
		if a.Tag == b.Tag {
			t.Errorf("parent change did not change the child's tag")
		}
	})
	t.Run("base template", func(t *testing.T) {
		dir := fixture(t, map[string]string{"s.yaml": "name: a\npython_version: \"3.11\"\n"})
		a := load(t, dir, "s.yaml")
		b, err := Load(t.Context(), filepath.Join(dir, "s.yaml"), Options{Defaults: Defaults{PythonBase: "example.com/python:{python_version}"}})
		if err != nil {
			t.Fatal(err)
		}
		if a.Identity.Tag == b.Identity.Tag {
			t.Errorf("the python base template did not change the tag")
		}
	})
}
