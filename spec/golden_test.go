package spec

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json from the current encoding")

// goldenCases are spec files (and the files they reference) whose tags are
// pinned in testdata/golden.json. Any drift in the encoding fails the test;
// changing the encoding on purpose means bumping Encoding and running
// `go test ./spec -run TestGolden -update`.
var goldenCases = map[string]map[string]string{
	"minimal": {
		"spec.yaml": "name: app\n",
	},
	"flyte-imagespec": {
		"spec.yaml": `name: flyte-workflows
registry: ghcr.io/my-org
python_version: 3.11
packages: [flytekit==1.13.5, pandas==2.2.2]
apt_packages: [git]
env: {FLYTE_SDK_LOGGING_LEVEL: "20"}
builder: default
`,
	},
	"full": {
		"spec.yaml": `name: full
registry: 127.0.0.1:5000/team
base_image: debian:bookworm-slim
python_version: "3.11"
packages: ["numpy>=1.26,<2", "requests[socks]==2.32.3; python_version >= '3.8'"]
requirements: requirements.txt
apt_packages: [jq, curl=7.88.1-10+deb12u8]
conda_channels: [conda-forge]
env: {A: "1", B: two}
commands: ["echo one", "echo two"]
copy: [app, config.ini]
source_root: src
pip_index: http://127.0.0.1:8080/simple
pip_extra_index_url: [https://example.com/simple]
pip_extra_args: --prefer-binary --no-deps
platform: [linux/arm64, linux/amd64]
entrypoint: [python, -m, app]
workdir: /srv
labels: {team: ml}
tag_format: "{spec_hash}-v1"
`,
		"requirements.txt": "pyyaml==6.0.2\n",
		"app/main.py":      "print('hi')\n",
		"config.ini":       "[app]\nx=1\n",
		"src/pkg/mod.py":   "X = 1\n",
	},
	"toml": {
		"spec.toml": `name = "etl"
python_version = 3.12
apt_packages = ["libpq5"]
[env]
PYTHONUNBUFFERED = "1"
`,
	},
	"json-cuda": {
		"spec.json": `{"name": "gpu", "cuda": "12.4.1", "cudnn": "9", "python_version": 3.10, "entrypoint": []}`,
	},
	"normalized-spellings": {
		"spec.yaml": `name: norm
platform: [Linux/X86_64, linux/aarch64, linux/arm64/v8]
packages: ["NumPy >= 1 , < 2", "Requests[Socks,Security] == 2.32.3 ; python_version>='3.8'", "pkg @ https://example.com/pkg-1.0.tar.gz"]
source_root: src
source_copy_mode: LOADED_MODULES
`,
		"src/mod.py": "X = 1\n",
	},
	"no-copy": {
		"spec.yaml":  "name: nocopy\nsource_root: src\nsource_copy_mode: NO_COPY\n",
		"src/mod.py": "X = 1\n",
	},
	"non-utf8-names": {
		"spec.yaml":          "name: bytes\ncopy: [data]\n",
		"data/caf\xe9.txt":   "latin-1 name\n",
		"data/caf\u00e9.txt": "UTF-8 name\n",
	},
	"flyte-defaults": {
		"spec.yaml": "registry: GHCR.io/My-Org\npackages: [flytekit]\n",
	},
	"uv-lock": {
		"spec.yaml":      "name: uvapp\nrequirements: uv.lock\npython_version: \"3.11\"\nplatform: [linux/amd64, linux/arm64]\n",
		"pyproject.toml": "[project]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"x\"]\n",
		"uv.lock":        "version = 1\nrevision = 2\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"x\" }]\n\n[[package]]\nname = \"x\"\nversion = \"1.0\"\nsource = { registry = \"https://pypi.org/simple\" }\nwheels = [{ url = \"https://files.example/x-1.0-py3-none-any.whl\", hash = \"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" }]\n",
	},
	"poetry-lock": {
		"spec.yaml":           "name: poetryapp\nrequirements: deps/poetry.lock\n",
		"deps/pyproject.toml": "[tool.poetry.dependencies]\npython = \"^3.11\"\nx = \"^1\"\n",
		"deps/poetry.lock":    "[[package]]\nname = \"x\"\nversion = \"1.0\"\ngroups = [\"main\"]\nfiles = [{file = \"x-1.0-py3-none-any.whl\", hash = \"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}]\n\n[metadata]\nlock-version = \"2.1\"\n",
	},
	"pylock-toml": {
		"spec.yaml":   "name: pylockapp\nrequirements: pylock.toml\n",
		"pylock.toml": "lock-version = \"1.0\"\ncreated-by = \"uv\"\n\n[[packages]]\nname = \"x\"\nversion = \"1.0\"\nwheels = [{ url = \"https://files.example/x-1.0-py3-none-any.whl\", hashes = { sha256 = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" } }]\n",
	},
	"nested": {
		"base.yaml":  "name: base\napt_packages: [jq]\n",
		"child.yaml": "name: child\nbase_image: {spec: ./base.yaml}\npackages: [requests]\n",
	},
}

func goldenFile(files map[string]string) string {
	var names []string
	for n := range files {
		if ext := filepath.Ext(n); ext == ".yaml" || ext == ".toml" || ext == ".json" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names[len(names)-1] // the child, when there are two
}

func TestGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden.json")
	got := map[string]Identity{}
	for name, files := range goldenCases {
		dir := fixture(t, files)
		got[name] = load(t, dir, goldenFile(files)).Identity
	}
	if *update {
		data, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]Identity
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	for name := range goldenCases {
		if got[name] != want[name] {
			t.Errorf("%s: identity drifted:\n got %+v\nwant %+v\nan intended change of the encoding must bump spec.Encoding", name, got[name], want[name])
		}
	}
	if len(want) != len(goldenCases) {
		t.Errorf("golden.json has %d vectors, the test has %d cases; run with -update", len(want), len(goldenCases))
	}
}

// TestGoldenDocument pins one canonical document byte for byte, so the
// encoding written in docs/identity.md can be checked by hand.
func TestGoldenDocument(t *testing.T) {
	dir := fixture(t, map[string]string{"spec.yaml": "name: app\npackages: [\"b >= 1, < 2\", A]\nenv: {Z: \"1\", A: \"x\\\\\\\"y\"}\nplatform: Linux/x86_64\n"})
	img := load(t, dir, "spec.yaml")
	want := `{"encoding":"ispec.identity/v2","platforms":["linux/amd64"],"recipe":"` + RecipeVersion + `","spec":{"base_image":{"ref":"docker.io/library/debian:bookworm-slim"},"env":{"A":"x\\\"y","Z":"1"},"packages":["a","b<2,>=1"],"workdir":"/root"}}`
	if string(img.Document) != want {
		t.Errorf("document:\n got %s\nwant %s", img.Document, want)
	}
	// The hash docs/identity.md gives for this document.
	if img.Identity.SpecHash != "8272dcfbfbb7bbdcdf08a0d12c60d3f37234db115d0ff628327d24b46255c436" {
		t.Errorf("spec hash %s differs from docs/identity.md section 6", img.Identity.SpecHash)
	}
}
