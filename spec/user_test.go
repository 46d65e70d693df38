package spec

import (
	"strings"
	"testing"
)

func TestUserField(t *testing.T) {
	tag := func(user string) string {
		doc := "name: app\n"
		if user != "" {
			doc += "user: " + user + "\n"
		}
		return load(t, fixture(t, map[string]string{"spec.yaml": doc}), "spec.yaml").Identity.Tag
	}
	seen := map[string]string{}
	for _, u := range []string{"", "root", "0", "flytekit", "1000", "1000:1000", "_svc-1.x"} {
		got := tag(u)
		if other, dup := seen[got]; dup {
			t.Errorf("user %q and %q give one tag", u, other)
		}
		seen[got] = u
	}
	for _, bad := range []string{"Root", "-x", "1000:", "1000:x", "a b", "99999999999", "x:1000", strings.Repeat("a", 33)} {
		err := loadErr(t, fixture(t, map[string]string{"spec.yaml": "name: app\nuser: \"" + bad + "\"\n"}), "spec.yaml")
		if !strings.Contains(err.Error(), "user") {
			t.Errorf("user %q: error %v does not name the field", bad, err)
		}
	}
}
