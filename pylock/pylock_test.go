package pylock

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(t *testing.T, dir, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", dir, name))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	return data
}

// pinSummary writes pins as "name==version file" lines.
func pinSummary(pins []Pin) string {
	var out []string
	for _, p := range pins {
		out = append(out, p.Name+"=="+p.Version)
	}
	return strings.Join(out, " ")
}

// TestFixturesInstallTheirDefaultPins: each published format's fixture
// (dependencies, an extra, a package excluded on arm64 by a marker, a
// dev group) gives the same pins: the project's default dependencies
// only, per platform.
func TestFixturesInstallTheirDefaultPins(t *testing.T) {
	cases := []struct{ dir, file string }{
		{"uv", "uv.lock"},
		{"poetry", "poetry.lock"},
		{"pep751", "pylock.toml"},
	}
	want := map[string]string{
		"linux/amd64": "ispec-lk-amd==1.0.0 ispec-lk-core==1.0.0 ispec-lk-fast==0.5.0 ispec-lk-util==1.0.0",
		"linux/arm64": "ispec-lk-core==1.0.0 ispec-lk-fast==0.5.0 ispec-lk-util==1.0.0",
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			f, ok := FormatOf(c.file)
			if !ok {
				t.Fatalf("FormatOf(%s) is not a lock", c.file)
			}
			l, err := Parse(c.file, f, readFixture(t, c.dir, c.file), readFixture(t, c.dir, "pyproject.toml"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			for plat, w := range want {
				for _, py := range []string{"", "3.11"} {
					pins, err := l.Pins(Target{Platform: plat, Python: py})
					if err != nil {
						t.Fatalf("Pins(%s, %q): %v", plat, py, err)
					}
					if got := pinSummary(pins); got != w {
						t.Errorf("Pins(%s, %q) = %s, want %s", plat, py, got, w)
					}
					for _, p := range pins {
						if len(p.SHA256) != 64 || p.File == "" || p.Marker != "" {
							t.Errorf("pin %+v: want a file, a sha256 and no marker left", p)
						}
						if f != FormatPoetry && !strings.HasSuffix(p.URL, "/files/"+p.File) {
							t.Errorf("pin %s has URL %q, want the lock's URL of %s", p.Name, p.URL, p.File)
						}
					}
				}
			}
		})
	}
}

func TestFormatOf(t *testing.T) {
	for p, want := range map[string]Format{
		"uv.lock": FormatUV, "sub/poetry.lock": FormatPoetry, "pylock.toml": FormatPEP751,
		"pylock.gpu.toml": FormatPEP751, "requirements.txt": "", "pyproject.toml": "",
	} {
		got, ok := FormatOf(p)
		if got != want || ok != (want != "") {
			t.Errorf("FormatOf(%q) = %q, %v; want %q", p, got, ok, want)
		}
	}
}

// TestRequirementsFile: the pip requirements file pins each artifact by
// URL and hash, or by version and every recorded hash without a URL.
func TestRequirementsFile(t *testing.T) {
	pins := []Pin{
		{Name: "a", Version: "1", URL: "https://x/a-1-py3-none-any.whl", SHA256: strings.Repeat("a", 64), Marker: `python_version < "3.11"`},
		{Name: "b", Version: "2", SHA256: strings.Repeat("b", 64), Hashes: []string{strings.Repeat("b", 64), strings.Repeat("c", 64)}},
	}
	got := string(Requirements(pins, []string{"https://idx/simple"}))
	want := "--extra-index-url https://idx/simple\n" +
		`a @ https://x/a-1-py3-none-any.whl ; python_version < "3.11" --hash=sha256:` + strings.Repeat("a", 64) + "\n" +
		"b==2 --hash=sha256:" + strings.Repeat("b", 64) + " --hash=sha256:" + strings.Repeat("c", 64) + "\n"
	if got != want {
		t.Errorf("Requirements =\n%s\nwant\n%s", got, want)
	}
}

const uvHead = "version = 1\nrevision = 2\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\nsource = { editable = \".\" }\ndependencies = [{ name = \"x\" }]\n\n"

// TestUninstallableLocks: a lock that cannot be installed as written is
// an error naming the file, the line and the package.
func TestUninstallableLocks(t *testing.T) {
	h := strings.Repeat("0", 64)
	cases := []struct {
		name, file, body, line, want string
	}{
		{"missing hash", "uv.lock", uvHead + "[[package]]\nname = \"x\"\nversion = \"1\"\nsource = { registry = \"https://i/simple\" }\nwheels = [{ url = \"https://i/x-1-py3-none-any.whl\" }]\n",
			":11:", "has no hash"},
		{"local path", "uv.lock", uvHead + "[[package]]\nname = \"x\"\nversion = \"1\"\nsource = { path = \"../x\" }\n",
			":11:", "local path"},
		{"git without commit", "uv.lock", uvHead + "[[package]]\nname = \"x\"\nversion = \"1\"\nsource = { git = \"https://g/x?branch=main\" }\n",
			":11:", "without a commit"},
		{"pylock wheel path", "pylock.toml", "lock-version = \"1.0\"\n\n[[packages]]\nname = \"x\"\nversion = \"1\"\nwheels = [{ path = \"dist/x-1-py3-none-any.whl\", hashes = { sha256 = \"" + h + "\" } }]\n",
			":4:", "local path"},
		{"pylock vcs no commit", "pylock.toml", "lock-version = \"1.0\"\n\n[[packages]]\nname = \"x\"\nvcs = { type = \"git\", url = \"https://g/x\" }\n",
			":4:", "without a commit"},
		{"pylock sha512 only", "pylock.toml", "lock-version = \"1.0\"\n\n[[packages]]\nname = \"x\"\nversion = \"1\"\nwheels = [{ url = \"https://i/x-1-py3-none-any.whl\", hashes = { sha512 = \"ab\" } }]\n",
			":4:", "no sha256"},
		{"poetry directory", "poetry.lock", "[[package]]\nname = \"x\"\nversion = \"1\"\ngroups = [\"main\"]\nfiles = []\n\n[package.source]\ntype = \"directory\"\nurl = \"../x\"\n",
			":2:", "local path"},
		{"credentials in URL", "pylock.toml", "lock-version = \"1.0\"\n\n[[packages]]\nname = \"x\"\nversion = \"1\"\nwheels = [{ url = \"https://u:p@i/x-1-py3-none-any.whl\", hashes = { sha256 = \"" + h + "\" } }]\n",
			":4:", "credentials"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, _ := FormatOf(c.file)
			l, err := Parse(c.file, f, []byte(c.body), nil)
			if err == nil {
				_, err = l.Pins(Target{Platform: "linux/amd64", Python: "3.11"})
			}
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an invalid lock", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.file+c.line) || !strings.Contains(msg, "package x") || !strings.Contains(msg, c.want) {
				t.Errorf("err = %q, want %s%s, package x and %q", msg, c.file, c.line, c.want)
			}
		})
	}
}

// TestWheelChoice: per platform and Python, the most specific wheel that
// fits; without a Python version only wheels for any Python 3.
func TestWheelChoice(t *testing.T) {
	h := func(c string) string { return strings.Repeat(c, 64) }
	body := "lock-version = \"1.0\"\n\n[[packages]]\nname = \"np\"\nversion = \"2.0\"\nwheels = [\n" +
		"  { url = \"https://i/np-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl\", hashes = { sha256 = \"" + h("1") + "\" } },\n" +
		"  { url = \"https://i/np-2.0-cp311-cp311-manylinux_2_17_aarch64.whl\", hashes = { sha256 = \"" + h("2") + "\" } },\n" +
		"  { url = \"https://i/np-2.0-cp312-cp312-manylinux_2_17_x86_64.whl\", hashes = { sha256 = \"" + h("3") + "\" } },\n" +
		"  { url = \"https://i/np-2.0-cp311-cp311-musllinux_1_1_x86_64.whl\", hashes = { sha256 = \"" + h("4") + "\" } },\n" +
		"  { url = \"https://i/np-2.0-cp311-cp311-win_amd64.whl\", hashes = { sha256 = \"" + h("5") + "\" } },\n" +
		"]\n"
	l, err := Parse("pylock.toml", FormatPEP751, []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ plat, py, want string }{
		{"linux/amd64", "3.11", h("1")},
		{"linux/arm64", "3.11", h("2")},
		{"linux/amd64", "3.12.1", h("3")},
	} {
		pins, err := l.Pins(Target{Platform: c.plat, Python: c.py})
		if err != nil || len(pins) != 1 || pins[0].SHA256 != c.want {
			t.Errorf("Pins(%s, %s) = %+v, %v; want sha256 %s…", c.plat, c.py, pins, err, c.want[:4])
		}
	}
	_, err = l.Pins(Target{Platform: "linux/amd64"})
	if err == nil || !strings.Contains(err.Error(), "set python_version") {
		t.Errorf("without a Python version: %v, want a hint to set python_version", err)
	}
	_, err = l.Pins(Target{Platform: "linux/s390x", Python: "3.11"})
	if err == nil || !strings.Contains(err.Error(), "none of its wheels fits linux/s390x") {
		t.Errorf("on s390x: %v, want no wheel fits", err)
	}
}

// TestMarkerLeftForPip: a marker on the Python version, when the spec
// names none, is passed to pip; with one it is decided here.
func TestMarkerLeftForPip(t *testing.T) {
	body := uvHead[:strings.Index(uvHead, "dependencies")] + "dependencies = [{ name = \"x\", marker = \"python_version < '3.11' and sys_platform == 'linux'\" }, { name = \"y\", marker = \"sys_platform == 'win32'\" }]\n\n" +
		"[[package]]\nname = \"x\"\nversion = \"1\"\nsource = { registry = \"https://i/simple\" }\nwheels = [{ url = \"https://i/x-1-py3-none-any.whl\", hash = \"sha256:" + strings.Repeat("a", 64) + "\" }]\n\n" +
		"[[package]]\nname = \"y\"\nversion = \"1\"\nsource = { registry = \"https://i/simple\" }\nwheels = [{ url = \"https://i/y-1-py3-none-any.whl\", hash = \"sha256:" + strings.Repeat("b", 64) + "\" }]\n"
	l, err := Parse("uv.lock", FormatUV, []byte(body), nil)
	if err != nil {
		t.Fatal(err)
	}
	pins, err := l.Pins(Target{Platform: "linux/amd64"})
	if err != nil || len(pins) != 1 || pins[0].Name != "x" || pins[0].Marker != `python_version < "3.11"` {
		t.Fatalf("Pins without Python = %+v, %v; want x with the marker python_version < \"3.11\" left", pins, err)
	}
	for py, n := range map[string]int{"3.10": 1, "3.11": 0} {
		pins, err := l.Pins(Target{Platform: "linux/amd64", Python: py})
		if err != nil || len(pins) != n || (n == 1 && pins[0].Marker != "") {
			t.Errorf("Pins(Python %s) = %+v, %v; want %d pins, no marker", py, pins, err, n)
		}
	}
}

// TestPoetryWithoutGroups: a poetry.lock written before Poetry 2 is
// walked from pyproject.toml's dependencies; dev dependencies and
// optional ones stay out.
func TestPoetryWithoutGroups(t *testing.T) {
	h := "sha256:" + strings.Repeat("a", 64)
	pkgs := ""
	for _, n := range []string{"a", "b", "c", "dev"} {
		pkgs += "[[package]]\nname = \"" + n + "\"\nversion = \"1\"\ncategory = \"main\"\nfiles = [{file = \"" + n + "-1-py3-none-any.whl\", hash = \"" + h + "\"}]\n\n"
		if n == "a" {
			pkgs += "[package.dependencies]\nb = {version = \">=1\", markers = \"platform_machine == \\\"aarch64\\\"\"}\nc = {version = \">=1\", optional = true}\n\n[package.extras]\nfull = [\"c (>=1)\"]\n\n"
		}
	}
	py := "[tool.poetry.dependencies]\npython = \"^3.11\"\na = \"^1\"\n\n[tool.poetry.group.dev.dependencies]\ndev = \"*\"\n"
	l, err := Parse("poetry.lock", FormatPoetry, []byte(pkgs), []byte(py))
	if err != nil {
		t.Fatal(err)
	}
	for plat, want := range map[string]string{"linux/amd64": "a==1", "linux/arm64": "a==1 b==1"} {
		pins, err := l.Pins(Target{Platform: plat, Python: "3.11"})
		if err != nil || pinSummary(pins) != want {
			t.Errorf("Pins(%s) = %s, %v; want %s", plat, pinSummary(pins), err, want)
		}
		if err == nil && pins[0].URL != "" && len(pins[0].Hashes) != 1 {
			t.Errorf("poetry pin %+v: want no URL and the recorded hashes", pins[0])
		}
	}
	if _, err := Parse("poetry.lock", FormatPoetry, []byte(pkgs), nil); err == nil || !strings.Contains(err.Error(), "pyproject.toml") {
		t.Errorf("without pyproject.toml: %v, want an error naming it", err)
	}
}

func TestMarkers(t *testing.T) {
	env := Target{Platform: "linux/arm64", Python: "3.11.4"}.Env()
	env.Extras = []string{"Fast"}
	env.Groups = []string{"dev"}
	for m, want := range map[string]bool{
		`python_version >= "3.8"`:                              true,
		`python_version < '3.10'`:                              false,
		`python_full_version >= "3.11.3"`:                      true,
		`python_version ~= "3.9"`:                              true,
		`python_version == "3.10.*"`:                           false,
		`python_full_version == "3.11.*"`:                      true,
		`platform_machine == "aarch64" and os_name == "posix"`: true,
		`sys_platform == "win32" or (platform_system == "Linux" and implementation_name == "cpython")`: true,
		`extra == "fast"`:                 true,
		`extra == "slow"`:                 false,
		`"dev" in dependency_groups`:      true,
		`'docs' not in dependency_groups`: true,
		`"fast" in extras`:                true,
		`"linux" in sys_platform`:         true,
	} {
		got, residual, err := EvalMarker(m, env)
		if err != nil || got != want || residual != "" {
			t.Errorf("EvalMarker(%s) = %v, %q, %v; want %v", m, got, residual, err, want)
		}
	}
	for _, bad := range []string{`python_version >=`, `foo == "1"`, `python_version < "3" and`, `(os_name == "posix"`} {
		if _, _, err := EvalMarker(bad, env); err == nil {
			t.Errorf("EvalMarker(%s) gave no error", bad)
		}
	}
}

func TestVersionOrder(t *testing.T) {
	order := []string{"1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.0.1", "1.10", "2!0.1"}
	for i := 0; i+1 < len(order); i++ {
		a, _ := parseVersion(order[i])
		b, _ := parseVersion(order[i+1])
		if a.compare(b) >= 0 {
			t.Errorf("%s is not before %s", order[i], order[i+1])
		}
	}
}

// TestWritePEP751RoundTrips: the pylock.toml written from each
// platform's pins reads back to the same pins on each platform.
func TestWritePEP751RoundTrips(t *testing.T) {
	h := func(c string) string { return strings.Repeat(c, 64) }
	common := Pin{Name: "a", Version: "1.0", File: "a-1.0-py3-none-any.whl", URL: "https://i/a-1.0-py3-none-any.whl", SHA256: h("1")}
	amdOnly := Pin{Name: "b", Version: "2.0", File: "b-2.0-py3-none-any.whl", URL: "https://i/b-2.0-py3-none-any.whl", SHA256: h("2")}
	armSdist := Pin{Name: "c", Version: "3.0", File: "c-3.0.tar.gz", URL: "https://i/c-3.0.tar.gz", SHA256: h("3")}
	in := map[string][]Pin{"linux/amd64": {common, amdOnly}, "linux/arm64": {common, armSdist}}
	data, err := WritePEP751(in)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse("pylock.toml", FormatPEP751, data, nil)
	if err != nil {
		t.Fatalf("Parse:\n%s\n%v", data, err)
	}
	for plat, want := range in {
		got, err := l.Pins(Target{Platform: plat, Python: "3.11"})
		if err != nil {
			t.Fatalf("Pins(%s): %v", plat, err)
		}
		if len(got) != len(want) {
			t.Fatalf("Pins(%s) = %+v, want %+v\n%s", plat, got, want, data)
		}
		for i := range want {
			if got[i].Name != want[i].Name || got[i].URL != want[i].URL || got[i].SHA256 != want[i].SHA256 || got[i].File != want[i].File {
				t.Errorf("Pins(%s)[%d] = %+v, want %+v", plat, i, got[i], want[i])
			}
		}
	}
}
