package spec

import (
	"errors"
	"strings"
	"testing"
)

// TestEnvValues: env values are Dockerfile ENV words; one ENV would refuse
// is refused at validation with its file, line and field, and every word
// ENV accepts (whatever the base image sets) passes.
func TestEnvValues(t *testing.T) {
	for _, v := range []string{`'"unclosed'`, `"'unclosed"`, `"${UNCLOSED"`, `"${}"`, `"a${B"`, `'x\"y"z'`} {
		t.Run("bad "+v, func(t *testing.T) {
			dir := fixture(t, map[string]string{"s.yaml": "name: a\nenv:\n  OK: fine\n  BAD: " + v + "\n"})
			err := loadErr(t, dir, "s.yaml")
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want a FieldError", err)
			}
			for _, want := range []string{"s.yaml:4", "env.BAD", "Dockerfile ENV"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v, want it to contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "env.OK") {
				t.Errorf("err = %v names a good value", err)
			}
		})
	}
	for _, v := range []string{`"/opt/bin:$PATH"`, `"${A:-x}${B:+y}${C:?must be set}"`, `'\$HOME'`, `"'single'"`, `'"double"'`, `'C:\\dir'`, `"100%"`, `""`, `"a b  c"`} {
		t.Run("good "+v, func(t *testing.T) {
			load(t, fixture(t, map[string]string{"s.yaml": "name: a\nenv: {V: " + v + "}\n"}), "s.yaml")
		})
	}
}
