package spec

import (
	"strings"
	"testing"
)

// TestFloatingRequirements: packages and requirements lines without a
// pinned version and hash float, each named with its file, line and why;
// a lock file and hashed pins do not; a parent's float too.
func TestFloatingRequirements(t *testing.T) {
	h := strings.Repeat("a", 64)
	dir := fixture(t, map[string]string{
		"base.yaml": "name: base\npackages: [numpy]\n",
		"spec.yaml": "name: app\nbase_image: {spec: base.yaml}\npackages:\n  - pandas==2.2.2\n  - scipy>=1\nrequirements: reqs.txt\n",
		"reqs.txt":  "pillow\nrequests==2.32.3 --hash=sha256:" + h + "\nurllib3==2.0 \\\n    --hash=sha256:" + h + "\ntqdm==4.0\n",
	})
	img := load(t, dir, "spec.yaml")
	var got []string
	for _, f := range img.Floating() {
		got = append(got, f.String())
	}
	all := strings.Join(got, "\n")
	for _, w := range []string{
		"base.yaml:2: packages[0]: \"numpy\" is not pinned",
		"spec.yaml:4: packages[0]: \"pandas==2.2.2\" is pinned by version, not by hash",
		"spec.yaml:5: packages[1]: \"scipy>=1\" is not pinned",
		"reqs.txt:1: requirements: \"pillow\" is not pinned",
		"reqs.txt:5: requirements: \"tqdm==4.0\" is pinned by version",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("Floating lacks %q:\n%s", w, all)
		}
	}
	if len(got) != 5 {
		t.Errorf("%d floating, want 5:\n%s", len(got), all)
	}
	locked := load(t, fixture(t, map[string]string{
		"spec.yaml":   "name: app\nrequirements: pylock.toml\n",
		"pylock.toml": "lock-version = \"1.0\"\n\n[[packages]]\nname = \"x\"\nversion = \"1\"\nwheels = [{ url = \"https://i/x-1-py3-none-any.whl\", hashes = { sha256 = \"" + h + "\" } }]\n",
	}), "spec.yaml")
	if f := locked.Floating(); len(f) != 0 {
		t.Errorf("a locked spec floats: %v", f)
	}
}
