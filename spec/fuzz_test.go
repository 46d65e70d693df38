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
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		f := []Format{YAML, JSON, TOML}[int(format)%3]
		s, err := Decode("fuzz", data, f)
		if err == nil {
			c := &collector{file: "fuzz", lines: s.lines}
			validate(c, s)
			if c.err() == nil {
				normalize(s)
			}
		}
	})
}
