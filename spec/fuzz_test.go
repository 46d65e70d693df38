package spec

import (
	"testing"
)

// FuzzDecode: no input makes the decoder panic or hang, in any format.
func FuzzDecode(f *testing.F) {
	for _, files := range goldenCases {
		for _, text := range files {
			f.Add([]byte(text), uint8(0))
		}
	}
	f.Add([]byte("name: a\nx: &a [*a]\n"), uint8(0))
	f.Add([]byte(`{"name": "a", "env": {"A": 1.50}}`), uint8(1))
	f.Add([]byte("name = \"a\"\n[env]\nA = 1.50\n[[x]]\n"), uint8(2))
	f.Add([]byte("name: a\npackages: [\"A[x,Y] (>= 1 , <2) ; python_version>'3'\", \"p @ https://u:p@h/x\"]\nplatform: Linux/AArch64\n"), uint8(0))
	f.Add([]byte(`{"pip_extra_args": "--proxy u:p@h -ihttps://t@h/", "env": {"HTTPS_PROXY": "u:p@h"}}`), uint8(1))
	f.Add([]byte("conda_channels = [\"https://h/t/tok/c\"]\npackages = [\n  \"x\",\n  [1],\n]\n"), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		f := []Format{YAML, JSON, TOML}[int(format)%3]
		s, err := Decode("fuzz", data, f)
		if err == nil {
			c := &collector{file: "fuzz", lines: s.lines}
			validate(c, s)
			if c.err() == nil {
				n := normalize(s)
				// One spelling is a fixed point, and still valid.
				for _, p := range n.Packages {
					if msg := checkPEP508(p); msg != "" {
						t.Errorf("normalized %q is invalid: %s", p, msg)
					}
					if again := normalizeRequirement(p); again != p {
						t.Errorf("normalizeRequirement(%q) = %q: not a fixed point", p, again)
					}
				}
				for _, p := range n.Platform {
					if again := NormalizePlatform(p); again != p {
						t.Errorf("NormalizePlatform(%q) = %q: not a fixed point", p, again)
					}
				}
			}
		}
		if m := maskCredentials(string(data)); maskCredentials(m) != m {
			t.Errorf("masking %q twice differs from once: %q, %q", data, m, maskCredentials(m))
		}
	})
}

// FuzzRequirement: the one spelling of a valid requirement is valid and a
// fixed point.
func FuzzRequirement(f *testing.F) {
	for _, r := range []string{"numpy>=1,<2", "A[x, Y] (== 1.0RC1) ; python_version>'3' and (os_name=='nt')", "p @ https://h/p.whl ; extra == 'x'", "x===Foo", "x; a not in 'b\"c'"} {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, r string) {
		if checkPEP508(r) != "" {
			return
		}
		n := normalizeRequirement(r)
		if msg := checkPEP508(n); msg != "" {
			t.Errorf("normalizeRequirement(%q) = %q, invalid: %s", r, n, msg)
		}
		if again := normalizeRequirement(n); again != n {
			t.Errorf("normalizeRequirement(%q) = %q, then %q", r, n, again)
		}
	})
}
