package spec

import (
	"errors"
	"strings"
	"testing"
)

// TestCanonicalInvalidUTF8: every byte string has its own encoding; an
// invalid byte is \udcXX, which no valid string produces.
func TestCanonicalInvalidUTF8(t *testing.T) {
	for in, want := range map[string]string{
		"caf\xe9":         `"caf\udce9"`,
		"caf\u00e9":       `"café"`,
		"caf\ufffd":       "\"caf\ufffd\"",
		"\xff\xfe":        `"\udcff\udcfe"`,
		"a\xe2\x82b":      `"a\udce2\udc82b"`, // a truncated sequence: two bytes
		"\xed\xa0\x80":    `"\udced\udca0\udc80"`,
		`\udce9`:          `"\\udce9"`,
		"tab\tnul\x00end": `"tab\tnul\u0000end"`,
	} {
		if got := string(canonical(in)); got != want {
			t.Errorf("canonical(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestNonUTF8NamesHashAsBytes: trees whose names differ only in bytes that
// are not UTF-8 get different digests and tags.
func TestNonUTF8NamesHashAsBytes(t *testing.T) {
	variants := map[string][]string{
		"latin-1 e acute":     {"caf\xe9.txt"},
		"latin-1 e grave":     {"caf\xe8.txt"},
		"replacement char":    {"caf\ufffd.txt"},
		"UTF-8 e acute":       {"caf\u00e9.txt"},
		"two invalid bytes":   {"caf\xe9\xe9.txt"},
		"invalid folder name": {"d\xff/caf.txt"},
		"escape spelled out":  {`caf\udce9.txt`},
	}
	seen := map[string]string{}
	for name, paths := range variants {
		files := map[string]string{"s.yaml": "name: a\ncopy: [data]\n"}
		for _, p := range paths {
			files["data/"+p] = "same content\n"
		}
		got := load(t, fixture(t, files), "s.yaml")
		if prev, dup := seen[got.Copies[0].Digest]; dup {
			t.Errorf("%s and %s have the same tree digest", name, prev)
		}
		seen[got.Copies[0].Digest] = name
	}
}

// TestEquivalentSpellings: spellings flytekit, pip and containerd treat as
// one give one tag.
func TestEquivalentSpellings(t *testing.T) {
	groups := map[string][]string{
		"platform amd64": {"platform: linux/amd64", "platform: linux/x86_64", "platform: Linux/AMD64", "platform: linux/x86-64", "platform: linux/amd64/v1", "platform: [linux/amd64, linux/x86_64]", ""},
		"platform arm64": {"platform: linux/arm64", "platform: linux/aarch64", "platform: linux/arm64/v8", "platform: LINUX/ARM64/v8"},
		"platform list":  {"platform: [linux/arm64, linux/amd64]", "platform: \"linux/x86_64, linux/aarch64\"", "platform: [Linux/AArch64, linux/amd64/v1]"},
		"arm v7":         {"platform: linux/arm", "platform: linux/arm/v7", "platform: linux/armhf"},
		"specifier set":  {"packages: [\"numpy>=1,<2\"]", "packages: [\"numpy<2,>=1\"]", "packages: [\"NumPy >= 1 , < 2\"]", "packages: [\"numpy (<2, >=1)\"]"},
		"equals spacing": {"packages: [\"a==1\"]", "packages: [\"a == 1\"]", "packages: [\" A ==1 \"]", "packages: [\"a==1\", \"a == 1\"]"},
		"extras":         {"packages: [\"r[b,a]==2\"]", "packages: [\"R[A, b]==2\"]", "packages: [\"r[a,b,a] == 2\"]"},
		"markers": {
			"packages: [\"x; python_version >= '3.8'\"]",
			"packages: [\"x;python_version>=\\\"3.8\\\"\"]",
			"packages: [\"x ;  python_version  >=  '3.8'\"]",
		},
		"direct reference": {"packages: [\"p @ https://h/p.whl\"]", "packages: [\"p@https://h/p.whl\"]", "packages: [\"P  @  https://h/p.whl\"]"},
	}
	for name, texts := range groups {
		t.Run(name, func(t *testing.T) {
			want := hashOf(t, map[string]string{"s.yaml": "name: a\n" + texts[0] + "\n"}, "s.yaml")
			for _, text := range texts[1:] {
				if got := hashOf(t, map[string]string{"s.yaml": "name: a\n" + text + "\n"}, "s.yaml"); got.Tag != want.Tag {
					t.Errorf("%q: tag %s, want %s as for %q", text, got.Tag, want.Tag, texts[0])
				}
			}
		})
	}
	t.Run("different requirements stay different", func(t *testing.T) {
		seen := map[string]string{}
		for _, p := range []string{"numpy<2", "numpy<3", "numpy<2,>=1", "numpy[x]<2", "numpy<2; python_version >= '3.8'", "numpy<2; python_version >= '3.9'", "numpy===1.0", "numpy===1.0A"} {
			tag := hashOf(t, map[string]string{"s.yaml": "name: a\npackages: [\"" + p + "\"]\n"}, "s.yaml").Tag
			if prev, ok := seen[tag]; ok {
				t.Errorf("%q and %q have one tag", p, prev)
			}
			seen[tag] = p
		}
	})
}

// TestPlatformErrors: unknown platforms are refused at the field, with the
// known architectures listed.
func TestPlatformErrors(t *testing.T) {
	cases := []struct{ text, field, want string }{
		{"platform: linux/bogus", "platform[0]", "known architectures: 386, amd64, arm, arm64"},
		{"platform: linux/amd65", "platform[0]", `unknown architecture "amd65"`},
		{"platform: [linux/amd64, linux/x86]", "platform[1]", "known architectures"},
		{"platform: \"linux/amd64, linux/sparc\"", "platform[1]", "known architectures"},
		{"platform: linux/wasm", "platform[0]", "known architectures"},
		{"platform: linux/arm64/v7", "platform[0]", "known variants: v8.1"},
		{"platform: linux/amd64/v9", "platform[0]", "known variants: v2, v3, v4"},
		{"platform: windows/amd64", "platform[0]", "only linux"},
		{"platform: darwin/arm64", "platform[0]", "only linux"},
		{"platform: amd64", "platform[0]", "os/arch"},
		{"platform: linux", "platform[0]", "os/arch"},
		{"platform: linux/amd64/v2/x", "platform[0]", "os/arch"},
		{"platform: \"linux(5.10)/amd64\"", "platform[0]", "os/arch"},
		{"platform: [\"\"]", "platform[0]", "os/arch"},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			err := loadErr(t, fixture(t, map[string]string{"s.yaml": "name: a\n" + tc.text + "\n"}), "s.yaml")
			for _, w := range []string{"s.yaml:2: " + tc.field + ": ", tc.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestLockKeysNormalized: a lock written with another spelling of a
// platform still pins it.
func TestLockKeysNormalized(t *testing.T) {
	l := &Lock{BaseImage: &LockedImage{Ref: "r", Platforms: map[string]string{"linux/arm64/v8": "sha256:a", "linux/x86_64": "sha256:b"}}}
	got, err := l.pinned("s.yaml", "r", []string{"linux/amd64", "linux/arm64"})
	if err != nil || got["linux/arm64"] != "sha256:a" || got["linux/amd64"] != "sha256:b" {
		t.Errorf("pinned = %v, %v", got, err)
	}
}

// TestFlyteDefaults: name and registry mean what flytekit makes of them.
func TestFlyteDefaults(t *testing.T) {
	cases := []struct{ text, ref string }{
		{"packages: [x]\n", "flytekit:"},
		{"name:\npackages: [x]\n", "flytekit:"},
		{"name: null\n", "flytekit:"},
		{"name: MyImage\n", "myimage:"},
		{"name: Team/My-Image\n", "team/my-image:"},
		{"name: a\nregistry: GHCR.io/My-Org\n", "ghcr.io/my-org/a:"},
		{"registry: Localhost:5000/\n", "localhost:5000/flytekit:"},
	}
	for _, tc := range cases {
		t.Run(tc.text, func(t *testing.T) {
			img := load(t, fixture(t, map[string]string{"s.yaml": tc.text}), "s.yaml")
			if !strings.HasPrefix(img.Identity.Ref, tc.ref) {
				t.Errorf("ref %s, want %s...", img.Identity.Ref, tc.ref)
			}
		})
	}
	a := hashOf(t, map[string]string{"s.yaml": "name: App\nregistry: GHCR.IO/ORG\n"}, "s.yaml")
	b := hashOf(t, map[string]string{"s.yaml": "name: app\nregistry: ghcr.io/org\n"}, "s.yaml")
	if a != b {
		t.Errorf("case changed the identity: %+v and %+v", a, b)
	}
}

// TestRegistryScheme: a registry written as a URL says to drop the scheme.
func TestRegistryScheme(t *testing.T) {
	for reg, suggest := range map[string]string{
		"https://ghcr.io/org":        `"ghcr.io/org"`,
		"http://localhost:5000":      `"localhost:5000"`,
		"HTTPS://GHCR.IO/Org/":       `"ghcr.io/org"`,
		"oci://registry.lan:5000/ml": `"registry.lan:5000/ml"`,
	} {
		t.Run(reg, func(t *testing.T) {
			err := loadErr(t, fixture(t, map[string]string{"s.yaml": "name: a\nregistry: " + reg + "\n"}), "s.yaml")
			msg := err.Error()
			for _, w := range []string{"s.yaml:2: registry: ", "has a scheme", "drop", suggest} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if strings.Contains(msg, "invalid port") {
				t.Errorf("error %q talks of a port", msg)
			}
		})
	}
}

// TestSourceCopyMode: flytekit's values and nothing else; NO_COPY leaves
// the source out of the image and the hash; LOADED_MODULES is ALL.
func TestSourceCopyMode(t *testing.T) {
	src := map[string]string{"src/m.py": "X = 1\n"}
	with := func(text string) map[string]string {
		f := map[string]string{"s.yaml": "name: a\n" + text}
		for k, v := range src {
			f[k] = v
		}
		return f
	}
	for _, bad := range []string{"copy_all", "none", "auto", "all files", "1", "NOCOPY", "LOADED-MODULES"} {
		t.Run("refused "+bad, func(t *testing.T) {
			err := loadErr(t, fixture(t, with("source_root: src\nsource_copy_mode: \""+bad+"\"\n")), "s.yaml")
			for _, w := range []string{"s.yaml:3: source_copy_mode: ", "LOADED_MODULES, ALL, NO_COPY"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	t.Run("copying without source_root", func(t *testing.T) {
		for _, m := range []string{"ALL", "LOADED_MODULES"} {
			err := loadErr(t, fixture(t, with("source_copy_mode: "+m+"\n")), "s.yaml")
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "source_copy_mode: "+m+" copies source_root, which is not set") {
				t.Errorf("error %q", err)
			}
		}
	})
	all := hashOf(t, with("source_root: src\nsource_copy_mode: ALL\n"), "s.yaml")
	for _, same := range []string{"source_root: src\n", "source_root: src\nsource_copy_mode: LOADED_MODULES\n", "source_root: src\nsource_copy_mode: all\n", "source_root: src\nsource_copy_mode: Loaded_Modules\n"} {
		if got := hashOf(t, with(same), "s.yaml"); got.Tag != all.Tag {
			t.Errorf("%q: tag %s, want %s as ALL", same, got.Tag, all.Tag)
		}
	}
	none := load(t, fixture(t, with("source_root: src\nsource_copy_mode: NO_COPY\n")), "s.yaml")
	if none.Source != nil {
		t.Errorf("NO_COPY hashed the source")
	}
	if none.Identity.Tag == all.Tag {
		t.Errorf("NO_COPY and ALL have one tag")
	}
	if bare := hashOf(t, with(""), "s.yaml"); bare.Tag != none.Identity.Tag {
		t.Errorf("NO_COPY %s differs from no source at all %s", none.Identity.Tag, bare.Tag)
	}
	changed := with("source_root: src\nsource_copy_mode: NO_COPY\n")
	changed["src/m.py"] = "X = 2\n"
	if got := hashOf(t, changed, "s.yaml"); got.Tag != none.Identity.Tag {
		t.Errorf("NO_COPY: a source change changed the tag")
	}
	missing := map[string]string{"s.yaml": "name: a\nsource_root: gone\nsource_copy_mode: NO_COPY\n"}
	load(t, fixture(t, missing), "s.yaml")
}
