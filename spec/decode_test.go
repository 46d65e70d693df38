package spec

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeErrorLines: syntax errors, type errors and unknown fields
// name the file and line in every format, as file:line: field: message.
func TestDecodeErrorLines(t *testing.T) {
	cases := []struct {
		name, file, text string
		want             []string
	}{
		// JSON syntax.
		{"JSON trailing comma", "s.json", "{\"name\": \"a\",\n \"packages\": [\"x\",]\n}", []string{"s.json:2: parsing JSON", "invalid character ']'"}},
		{"JSON missing comma", "s.json", "{\"name\": \"a\"\n \"packages\": [\"x\"]\n}", []string{"s.json:2: parsing JSON"}},
		{"JSON bad literal", "s.json", "{\"name\": \"a\",\n\n \"packages\": [tru]\n}", []string{"s.json:3: parsing JSON", "literal true"}},
		{"JSON bad escape", "s.json", "{\"name\": \"a\",\n \"env\": {\n  \"A\": \"\\q\"}}", []string{"s.json:3: parsing JSON", "escape"}},
		{"JSON unclosed", "s.json", "{\"name\": \"a\",\n \"packages\": [\"x\"\n", []string{"s.json:2: parsing JSON", "ends before"}},
		{"JSON trailing data", "s.json", "{\"name\": \"a\"}\n\n{}", []string{"s.json:3: parsing JSON", "after top-level value"}},
		{"JSON duplicate key", "s.json", "{\"name\": \"a\",\n \"name\": \"b\"}", []string{"s.json:2: ", `key "name" appears twice`}},
		// JSON types and fields.
		{"JSON wrong type", "s.json", "{\"name\": \"a\",\n \"packages\": {\"a\": 1}\n}", []string{"s.json:2: packages: expected a list of strings"}},
		{"JSON wrong element type", "s.json", "{\"name\": \"a\",\n \"apt_packages\": [\n  \"jq\",\n  [\"x\"]]}", []string{"s.json:4: apt_packages[1]: expected a string, found a list"}},
		{"JSON boolean", "s.json", "{\"name\": \"a\",\n\n \"python_version\": true}", []string{"s.json:3: python_version:", "boolean"}},
		{"JSON unknown field", "s.json", "{\"name\": \"a\",\n\n \"pakages\": []}", []string{"s.json:3: ", `unknown field "pakages"`, `did you mean "packages"`}},
		{"JSON not an object", "s.json", "\n\n[1, 2]", []string{"s.json:3: ", "expected a mapping"}},
		// TOML syntax.
		{"TOML unclosed array", "s.toml", "name = \"a\"\npackages = [\"x\",\nfoo = 1\n", []string{"s.toml:3: parsing TOML"}},
		{"TOML two values", "s.toml", "name = \"a\"\n\npackages = \"x\" \"y\"\n", []string{"s.toml:3: parsing TOML", "expected newline"}},
		{"TOML duplicate key", "s.toml", "name = \"a\"\nname = \"b\"\n", []string{"s.toml:2: parsing TOML", "already defined"}},
		{"TOML bad escape", "s.toml", "name = \"a\"\n[env]\nA = \"\\q\"\n", []string{"s.toml:3: parsing TOML", "escape"}},
		{"TOML no value", "s.toml", "name = \"a\"\n\n\npython_version =\n", []string{"s.toml:4: parsing TOML"}},
		// TOML types and fields.
		{"TOML wrong type", "s.toml", "name = \"a\"\napt_packages = \"jq\"\n", []string{"s.toml:2: apt_packages: expected a list"}},
		{"TOML table member", "s.toml", "name = \"a\"\n[env]\nA = \"1\"\nB = [1]\n", []string{"s.toml:4: env.B: expected a string, found a list"}},
		{"TOML array element", "s.toml", "name = \"a\"\npackages = [\n  \"x\",\n  [\"y\"],\n]\n", []string{"s.toml:4: packages[1]: expected a string, found a list"}},
		{"TOML invalid element value", "s.toml", "name = \"a\"\napt_packages = [\n  \"jq\",\n  \"bad name!\",\n]\n", []string{"s.toml:4: apt_packages[1]: ", "Debian package"}},
		{"TOML unknown field", "s.toml", "name = \"a\"\n\npackges = [\"x\"]\n", []string{"s.toml:3: ", `unknown field "packges"`, `did you mean "packages"`}},
		{"TOML unknown table", "s.toml", "name = \"a\"\n\n[labls]\nx = \"1\"\n", []string{"s.toml:3: ", `unknown field "labls"`, `did you mean "labels"`}},
		{"TOML array of tables", "s.toml", "name = \"a\"\n\n[[platform]]\nx = 1\n", []string{"s.toml:3: platform[0]: expected a string, found a mapping"}},
		{"TOML dotted key", "s.toml", "name = \"a\"\n\nenv.A = [\"x\"]\n", []string{"s.toml:3: env.A: expected a string"}},
		{"TOML inline table", "s.toml", "name = \"a\"\nenv = { A = \"1\",\n  B = [2] }\n", []string{"s.toml:3: env.B: expected a string"}},
		// YAML, for comparison.
		{"YAML syntax", "s.yaml", "name: a\npackages: [x\n", []string{"s.yaml:1: parsing YAML", "did not find expected"}}, // the line yaml.v3 reports
		{"YAML tab", "s.yaml", "name: a\n\tpackages: [x]\n", []string{"s.yaml:2: parsing YAML"}},
		{"YAML second document", "s.yaml", "name: a\n---\nname: b\n", []string{"s.yaml:2: ", "one YAML document"}},
		{"YAML duplicate key", "s.yaml", "name: a\nname: b\n", []string{"s.yaml:2: ", "appears twice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := loadErr(t, fixture(t, map[string]string{tc.file: tc.text}), tc.file)
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
