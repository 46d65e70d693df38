package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// paths lists a tree's entry paths.
func paths(t *Tree) []string {
	var out []string
	for _, e := range t.Entries {
		out = append(out, e.Path)
	}
	return out
}

// TestSpecFileLeavesItsOwnTrees: a spec written inside the folder it
// copies (source_root "." or copy ".", as the flytekit plugin writes its
// spec) hashes neither itself nor its lock, so its tag does not move when
// the file is rewritten in a way that changes no field, or when a lock is
// written beside it; files that are not its own stay in the tree.
func TestSpecFileLeavesItsOwnTrees(t *testing.T) {
	const body = "name: app\nbase_image: example.com/base:1\nsource_root: .\ncopy: [.]\n"
	dir := fixture(t, map[string]string{
		"main.py":         "print(1)\n",
		"other.yaml":      "name: other\n",
		"other.yaml.lock": "{}\n",
		"s.yaml":          body,
	})
	opts := Options{IgnoreLock: true}
	img, err := Load(t.Context(), filepath.Join(dir, "s.yaml"), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".", "main.py", "other.yaml", "other.yaml.lock"}
	for name, tree := range map[string]*Tree{"source_root": img.Source, "copy[0]": img.Copies[0]} {
		if got := paths(tree); !slices.Equal(got, want) {
			t.Errorf("%s entries = %v, want %v", name, got, want)
		}
	}
	if len(img.Excluded) != 0 {
		t.Errorf("the spec's own files reported as excluded secrets: %v", img.Excluded)
	}

	// Rewritten with a comment, and with a lock beside it: same tag.
	if err := os.WriteFile(filepath.Join(dir, "s.yaml"), []byte("# the same image\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "s.yaml.lock"), []byte("{\"version\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := Load(t.Context(), filepath.Join(dir, "s.yaml"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Identity.Tag != img.Identity.Tag {
		t.Errorf("tag moved from %s to %s when the spec file changed and its lock appeared", img.Identity.Tag, again.Identity.Tag)
	}

	// The same files copied by a spec outside the folder: the spec file is
	// an ordinary file of that tree, and hashed.
	outer := filepath.Join(dir, "..", filepath.Base(dir)+".yaml")
	if err := os.WriteFile(outer, []byte("name: app\nbase_image: example.com/base:1\nsource_root: "+filepath.Base(dir)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(outer) })
	out, err := Load(t.Context(), outer, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(out.Source), []string{".", "main.py", "other.yaml", "other.yaml.lock", "s.yaml", "s.yaml.lock"}; !slices.Equal(got, want) {
		t.Errorf("outer spec's source_root entries = %v, want %v", got, want)
	}
}
