package spec

import (
	"strings"
	"testing"
)

// What ispec cannot build yet is refused when the spec loads, with one
// clear message, not a failing build or a page of PEP 508 errors.
func TestUnsupportedIsRefusedAtLoad(t *testing.T) {
	for name, c := range map[string]struct {
		files map[string]string
		want  []string
	}{
		"conda packages": {map[string]string{"spec.yaml": "name: a\nconda_packages: [numpy=1.26]\n"},
			[]string{"spec.yaml:2", "conda_packages", "not supported yet"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := loadErr(t, fixture(t, c.files), "spec.yaml")
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if n := strings.Count(err.Error(), "\n"); n > 0 {
				t.Errorf("error has %d lines, want one: %q", n+1, err)
			}
		})
	}
}

func TestIgnoredFieldsAreNamed(t *testing.T) {
	dir := fixture(t, map[string]string{"spec.yaml": "name: a\nbuilder: envd\nbuilder_options: {x: y}\nregistry_config: /home/me/.docker/config.json\n"})
	img := load(t, dir, "spec.yaml")
	got := strings.Join(IgnoredFields(img.Spec), "\n")
	for _, w := range []string{`builder: "envd" is ignored`, "builder_options: ignored", "registry_config: ignored", "docker/config.json"} {
		if !strings.Contains(got, w) {
			t.Errorf("IgnoredFields lacks %q: %s", w, got)
		}
	}
	same := load(t, fixture(t, map[string]string{"spec.yaml": "name: a\n"}), "spec.yaml")
	if img.Identity.Tag != same.Identity.Tag {
		t.Errorf("ignored fields changed the tag")
	}
	if got := IgnoredFields(load(t, fixture(t, map[string]string{"spec.yaml": "name: a\nbuilder: ispec\n"}), "spec.yaml").Spec); len(got) != 0 {
		t.Errorf("builder: ispec is noticed: %v", got)
	}
}
