package spec

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateLayers = flag.Bool("update-layers", false, "rewrite testdata/golden-layers.json from the current layers encoding")

// layerGoldenCases are layered specs whose tags testdata/golden-layers.json
// pins, under LayersEncoding.
var layerGoldenCases = map[string]map[string]string{
	"layers-heavy-light": {
		"spec.yaml": `name: train
python_version: "3.11"
layers:
  - apt_packages: [git, curl]
  - packages: [torch==2.4.0, "transformers>=4.44"]
    pip_index: http://127.0.0.1:8080/simple
  - packages: [rich]
    pre: true
  - env: {MODE: prod}
  - workdir: /app
  - commands: ["echo one", "echo two"]
`,
	},
	"layers-files": {
		"spec.toml": `name = "files"
packages = ["requests"]

[[layers]]
requirements = "reqs/base.txt"

[[layers]]
python_wheels = "wheels"

[[layers]]
copy = [{src = "app", dst = "/srv/app"}, {src = "conf.ini", dst = "conf/"}]

[[layers]]
uv_project = {pyproject = "proj/pyproject.toml", uvlock = "proj/uv.lock"}
`,
		"reqs/base.txt":                    "-c pins.txt\npyyaml\n",
		"reqs/pins.txt":                    "pyyaml==6.0.2\n",
		"wheels/tiny-1.0-py3-none-any.whl": "not really a zip\n",
		"app/main.py":                      "print('hi')\n",
		"conf.ini":                         "[a]\n",
		"proj/pyproject.toml":              "[project]\nname = \"p\"\n",
		"proj/uv.lock":                     "version = 1\n",
	},
}

func TestLayersGolden(t *testing.T) {
	path := filepath.Join("testdata", "golden-layers.json")
	got := map[string]Identity{}
	for name, files := range layerGoldenCases {
		got[name] = load(t, fixture(t, files), goldenFile(files)).Identity
	}
	if *updateLayers {
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
	for name := range layerGoldenCases {
		if got[name] != want[name] {
			t.Errorf("%s: identity drifted:\n got %+v\nwant %+v\nan intended change must bump spec.LayersEncoding or LayersRecipeVersion", name, got[name], want[name])
		}
	}
	if len(want) != len(layerGoldenCases) {
		t.Errorf("golden-layers.json has %d vectors, the test has %d cases", len(want), len(layerGoldenCases))
	}
}

// TestLayersDocument pins one layered document byte for byte (the one
// docs/identity.md section 9 shows).
func TestLayersDocument(t *testing.T) {
	dir := fixture(t, map[string]string{"spec.yaml": "name: app\nlayers:\n  - packages: [\"Big == 1\"]\n  - packages: [small==2]\n    allow_changes: true\n  - env: {A: \"1\"}\n"})
	img := load(t, dir, "spec.yaml")
	want := `{"encoding":"ispec.layers/v1","layers_recipe":"1","platforms":["linux/amd64"],"recipe":"` + RecipeVersion + `","spec":{"base_image":{"ref":"docker.io/library/debian:bookworm-slim"},"layers":[{"packages":["big==1"]},{"allow_changes":"true","packages":["small==2"]},{"env":{"A":"1"}}],"workdir":"/root"}}`
	if string(img.Document) != want {
		t.Errorf("document:\n got %s\nwant %s", img.Document, want)
	}
}

func TestLayersOrderIsHashed(t *testing.T) {
	a := load(t, fixture(t, map[string]string{"s.yaml": "name: a\nlayers:\n  - packages: [x]\n  - packages: [y]\n"}), "s.yaml")
	b := load(t, fixture(t, map[string]string{"s.yaml": "name: a\nlayers:\n  - packages: [y]\n  - packages: [x]\n"}), "s.yaml")
	if a.Identity.Tag == b.Identity.Tag {
		t.Fatal("swapping two layers kept the tag; the layers' order is part of the image")
	}
	// Inside one layer, packages are a set.
	c := load(t, fixture(t, map[string]string{"s.yaml": "name: a\nlayers:\n  - packages: [y, x]\n"}), "s.yaml")
	d := load(t, fixture(t, map[string]string{"s.yaml": "name: a\nlayers:\n  - packages: [x, y, x]\n"}), "s.yaml")
	if c.Identity.Tag != d.Identity.Tag {
		t.Error("the order of packages inside one layer changed the tag")
	}
}

func TestLayersFlatSpecKeepsEncoding(t *testing.T) {
	img := load(t, fixture(t, map[string]string{"s.yaml": "name: a\npackages: [x]\nlayers: []\n"}), "s.yaml")
	if !strings.Contains(string(img.Document), `"encoding":"`+Encoding+`"`) || strings.Contains(string(img.Document), "layers") {
		t.Errorf("an empty layers list changed the flat document: %s", img.Document)
	}
	flat := load(t, fixture(t, map[string]string{"s.yaml": "name: a\npackages: [x]\n"}), "s.yaml")
	if flat.Identity != img.Identity {
		t.Error("layers: [] moved a flat spec's tag")
	}
}

func TestLayersErrors(t *testing.T) {
	cases := []struct{ name, spec, want string }{
		{"two kinds", "layers:\n  - packages: [x]\n    apt_packages: [git]\n", "layers[0]: holds packages and apt_packages: a layer holds exactly one kind"},
		{"no kind", "layers:\n  - pre: true\n", "layers[0]: names no layer kind"},
		{"typo", "layers:\n  - apt_package: [git]\n", `layers[0]: unknown field "apt_package" in a layer; did you mean "apt_packages"?`},
		{"typo third", "layers:\n  - packages: [x]\n  - commands: [ls]\n  - envv: {A: b}\n", `layers[2]: unknown field "envv" in a layer; did you mean "env"?`},
		{"not a list", "layers: {packages: [x]}\n", "layers: expected a list of layers"},
		{"not a map", "layers:\n  - git\n", "layers[0]: expected a mapping with one of apt_packages"},
		{"pip option on apt", "layers:\n  - apt_packages: [git]\n    pre: true\n", "layers[0]: pre goes with packages, requirements or python_wheels, not with apt_packages"},
		{"bad requirement", "layers:\n  - packages: [x]\n  - packages: [\"a b\"]\n", `layers[1].packages[0]: "a b" is not a PEP 508 requirement`},
		{"empty packages", "layers:\n  - packages: []\n", "layers[0].packages: is empty"},
		{"relative workdir", "layers:\n  - workdir: app\n", `layers[0].workdir: "app" must be an absolute path`},
		{"copy escapes", "layers:\n  - copy: [{src: ../x, dst: /x}]\n", `layers[0].copy[0].src: "../x" climbs out`},
		{"copy no dst", "layers:\n  - copy: [{src: x}]\n", "layers[0].copy[0].dst: is required"},
		{"copy bad key", "layers:\n  - copy: [{src: x, dest: /x}]\n", `unknown field "dest"; expected src and dst (did you mean "dst"?)`},
		{"uv missing lock", "layers:\n  - uv_project: {pyproject: pyproject.toml}\n", "layers[0].uv_project.uvlock: is required"},
		{"pre not bool", "layers:\n  - packages: [x]\n    pre: maybe\n", "layers[0].pre: expected true or false"},
		{"env name", "layers:\n  - env: {\"A B\": x}\n", `layers[0].env.A B: "A B" is not a valid environment variable name`},
		{"secret source missing", "layers:\n  - packages: [x]\n    pip_secret_mounts: [[a, /b]]\n", "layers[0].pip_secret_mounts[0]: a does not exist"},
		{"secret source escapes", "layers:\n  - packages: [x]\n    pip_secret_mounts: [[../a, /b]]\n", `layers[0].pip_secret_mounts[0]: source "../a" climbs out`},
		{"secret target relative", "layers:\n  - packages: [x]\n    pip_secret_mounts: [{source: w/readme.txt, target: b}]\n", `layers[0].pip_secret_mounts[0]: target "b" must be an absolute path`},
		{"secret target taken", "pip_secret_mounts: [[w/readme.txt, /root/.netrc]]\nlayers:\n  - packages: [x]\n    pip_secret_mounts: [[w/readme.txt, /root/.netrc/]]\n",
			`layers[0].pip_secret_mounts[0]: target "/root/.netrc/" is also the target of pip_secret_mounts[0]`},
		{"secret env and target", "layers:\n  - packages: [x]\n    pip_secret_mounts: [{source: w/readme.txt, target: /b, env: TOKEN}]\n", "layers[0].pip_secret_mounts[0]: give target (a file) or env (an env variable), not both"},
		{"secret env name", "layers:\n  - packages: [x]\n    pip_secret_mounts: [{source: w/readme.txt, env: 9TOKEN}]\n", `layers[0].pip_secret_mounts[0]: env "9TOKEN" is not an env variable name`},
		{"secret env ispec sets", "layers:\n  - packages: [x]\n    pip_secret_mounts: [{source: w/readme.txt, env: pip_cache_dir}]\n", `layers[0].pip_secret_mounts[0]: env "pip_cache_dir" is set by ispec in every pip step`},
		{"secret env taken", "pip_secret_mounts: [{source: w/readme.txt, env: PIP_INDEX_URL}]\nlayers:\n  - packages: [x]\n    pip_secret_mounts: [{source: w/readme.txt, env: PIP_INDEX_URL}]\n",
			`layers[0].pip_secret_mounts[0]: env "PIP_INDEX_URL" is also the env of pip_secret_mounts[0]`},
		{"secret env twice", "pip_secret_mounts: [{source: w/readme.txt, env: T}, {source: w/readme.txt, env: T}]\n",
			`pip_secret_mounts[1]: env "T" is also the env of pip_secret_mounts[0]`},
		{"secret env set by env", "env: {PIP_INDEX_URL: x}\nlayers:\n  - packages: [x]\n    pip_secret_mounts: [{source: w/readme.txt, env: PIP_INDEX_URL}]\n",
			`layers[0].pip_secret_mounts[0]: env "PIP_INDEX_URL" is also set by env`},
		{"secret env set by a layer", "layers:\n  - env: {TOKEN: x}\n  - packages: [x]\n    pip_secret_mounts: [{source: w/readme.txt, env: TOKEN}]\n",
			`layers[1].pip_secret_mounts[0]: env "TOKEN" is also set by layers[0].env`},
		{"secret unknown key", "layers:\n  - packages: [x]\n    pip_secret_mounts: [{source: w/readme.txt, variable: T}]\n", `unknown field "variable"; expected source, and target or env`},
		{"secret not a list", "layers:\n  - packages: [x]\n    pip_secret_mounts: netrc\n", "layers[0].pip_secret_mounts: expected a list of [source, target] pairs"},
		{"secret pair", "layers:\n  - packages: [x]\n    pip_secret_mounts: [[a]]\n", "layers[0].pip_secret_mounts[0]: expected a [source, target] pair, found 1 values"},
		{"secret on commands", "layers:\n  - commands: [ls]\n    pip_secret_mounts: [[a, /b]]\n", "layers[0]: pip_secret_mounts goes with packages, requirements or python_wheels, not with commands"},
		{"secret copied", "layers:\n  - packages: [x]\n    pip_secret_mounts: [[w/readme.txt, /b]]\n  - copy: [{src: w/readme.txt, dst: /r}]\n", "layers[1].copy[0].src: w/readme.txt is a pip secret file"},
		{"missing file", "layers:\n  - requirements: nope.txt\n", "layers[0].requirements: nope.txt does not exist"},
		{"no wheels", "layers:\n  - python_wheels: w\n", "layers[0].python_wheels: w holds no .whl files"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture(t, map[string]string{"spec.yaml": "name: a\n" + tc.spec, "w/readme.txt": "no wheels\n"})
			err := loadErr(t, dir, "spec.yaml")
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\nwant it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "spec.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLayersLines(t *testing.T) {
	dir := fixture(t, map[string]string{"spec.yaml": "name: a\nlayers:\n  - packages: [x]\n  - packages: [x]\n    apt_packages: [git]\n"})
	err := loadErr(t, dir, "spec.yaml")
	if !strings.Contains(err.Error(), "spec.yaml:4: layers[1]") {
		t.Errorf("error %q does not name line 4", err)
	}
}

func TestLayersFormats(t *testing.T) {
	y := load(t, fixture(t, map[string]string{"s.yaml": "name: a\nlayers:\n  - packages: [x]\n    pre: true\n  - copy: [[f, /f]]\n", "f": "1\n"}), "s.yaml")
	j := load(t, fixture(t, map[string]string{"s.json": `{"name": "a", "layers": [{"packages": ["x"], "pre": true}, {"copy": [{"src": "f", "dst": "/f"}]}]}`, "f": "1\n"}), "s.json")
	tm := load(t, fixture(t, map[string]string{"s.toml": "name = \"a\"\n[[layers]]\npackages = [\"x\"]\npre = true\n[[layers]]\ncopy = [[\"f\", \"/f\"]]\n", "f": "1\n"}), "s.toml")
	if y.Identity.Tag != j.Identity.Tag || y.Identity.Tag != tm.Identity.Tag {
		t.Errorf("the same layers in YAML, JSON and TOML differ: %s %s %s", y.Identity.Tag, j.Identity.Tag, tm.Identity.Tag)
	}
}

func TestFirstLayerDifference(t *testing.T) {
	a := load(t, fixture(t, map[string]string{"s.yaml": "name: a\nlayers:\n  - packages: [big==1]\n  - packages: [small==1]\n  - commands: [ls]\n"}), "s.yaml")
	b := load(t, fixture(t, map[string]string{"s.yaml": "name: a\nlayers:\n  - packages: [big==1]\n  - packages: [small==2]\n  - commands: [ls]\n"}), "s.yaml")
	d, ok := FirstLayerDifference(a, b)
	if !ok || d.Index != 1 || d.Why != "packages" {
		t.Fatalf("FirstLayerDifference = %+v, %v; want layers[1] packages", d, ok)
	}
	if got := d.String(); got != "layers[1] (packages) differs in packages" {
		t.Errorf("String() = %q", got)
	}
	if _, ok := FirstLayerDifference(a, a); ok {
		t.Error("a spec differs from itself")
	}
	var fields []string
	for _, x := range Diff(a, b) {
		fields = append(fields, x.Field)
	}
	if strings.Join(fields, ",") != "spec.layers[1].packages" {
		t.Errorf("Diff fields = %v, want spec.layers[1].packages", fields)
	}
	c := load(t, fixture(t, map[string]string{"s.yaml": "name: a\nlayers:\n  - packages: [big==1]\n"}), "s.yaml")
	if d, ok := FirstLayerDifference(c, a); !ok || d.String() != "layers[1] (packages) is new in b" {
		t.Errorf("added layer: %+v %v", d, ok)
	}
}

// TestLayerSecretMounts: a layer's pip_secret_mounts are decoded in
// every format, resolved where the build reads them, left out of the hash
// (sources and contents) and out of the trees of copy layers.
func TestLayerSecretMounts(t *testing.T) {
	const doc = "name: a\nlayers:\n  - packages: [x]\n  - packages: [y]\n    pip_secret_mounts: [[keys/netrc, /root/.netrc], {source: keys/pip.conf, target: /etc/pip.conf}]\n  - copy: [{src: keys, dst: /keys}]\n"
	files := map[string]string{"keys/netrc": "machine a login b password c\n", "keys/pip.conf": "[global]\n", "keys/other": "x\n"}
	dir := fixture(t, withSpec(files, doc))
	img := load(t, dir, "spec.yaml")
	want := []SecretMount{{Source: "keys/netrc", Target: "/root/.netrc"}, {Source: "keys/pip.conf", Target: "/etc/pip.conf"}}
	if got := img.Spec.Layers[1].Pip.SecretMounts; !slices.Equal(got, want) {
		t.Fatalf("layers[1] secret mounts %+v, want %+v", got, want)
	}
	if len(img.LayerSecrets) != 3 || img.LayerSecrets[0] != nil || len(img.LayerSecrets[1]) != 2 ||
		filepath.Base(img.LayerSecrets[1][0]) != "netrc" || !filepath.IsAbs(img.LayerSecrets[1][1]) {
		t.Errorf("LayerSecrets %q", img.LayerSecrets)
	}
	var excluded []string
	for _, e := range img.Excluded {
		excluded = append(excluded, e.Field+" "+e.Path)
	}
	if !slices.Equal(excluded, []string{"layers[2].copy[0].src keys/netrc", "layers[2].copy[0].src keys/pip.conf"}) {
		t.Errorf("excluded %q, want both secrets out of the copy layer", excluded)
	}
	if strings.Contains(string(img.Document), "netrc") || strings.Contains(string(img.Document), "pip_secret_mounts") {
		t.Errorf("the hash document names the secrets: %s", img.Document)
	}
	// Neither the mounts (their order, targets) nor the secrets' contents
	// move the tag.
	other := withSpec(map[string]string{"keys/netrc": "machine z login y password x\n", "keys/pip.conf": "[other]\n", "keys/other": "x\n"},
		strings.Replace(doc, "[[keys/netrc, /root/.netrc], {source: keys/pip.conf, target: /etc/pip.conf}]", "[[keys/pip.conf, /etc/pip.conf], [keys/netrc, /run/netrc]]", 1))
	if b := load(t, fixture(t, other), "spec.yaml"); b.Identity.Tag != img.Identity.Tag {
		t.Errorf("a layer's secret mounts moved the tag: %s vs %s", img.Identity.Tag, b.Identity.Tag)
	}
	js := `{"name": "a", "layers": [{"packages": ["x"]}, {"packages": ["y"], "pip_secret_mounts": [["keys/netrc", "/root/.netrc"], {"source": "keys/pip.conf", "target": "/etc/pip.conf"}]}, {"copy": [{"src": "keys", "dst": "/keys"}]}]}`
	jf := map[string]string{"s.json": js}
	for k, v := range files {
		jf[k] = v
	}
	if j := load(t, fixture(t, jf), "s.json"); j.Identity.Tag != img.Identity.Tag || !slices.Equal(j.Spec.Layers[1].Pip.SecretMounts, want) {
		t.Errorf("the JSON spelling gives %+v, tag %s (YAML %s)", j.Spec.Layers[1].Pip.SecretMounts, j.Identity.Tag, img.Identity.Tag)
	}
}
