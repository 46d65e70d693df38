package spec

import "testing"

func TestIgnoreRules(t *testing.T) {
	cases := []struct {
		name, ispec, docker string
		path                string
		dir, want           bool
	}{
		{"git dir always", "", "", ".git", true, true},
		{"nested git dir", "", "", "sub/.git", true, true},
		{"unanchored name at any depth", "*.pyc\n", "", "a/b/c.pyc", false, true},
		{"comment and blank", "# *.py\n\n", "", "a.py", false, false},
		{"anchored pattern", "/build\n", "", "sub/build", true, false},
		{"anchored pattern at root", "/build\n", "", "build", true, true},
		{"dir-only pattern skips files", "cache/\n", "", "cache", false, false},
		{"dir-only pattern matches folders", "cache/\n", "", "x/cache", true, true},
		{"negation re-includes", "*.log\n!keep.log\n", "", "keep.log", false, false},
		{"negation order matters", "!keep.log\n*.log\n", "", "keep.log", false, true},
		{"double star", "docs/**/*.png\n", "", "docs/a/b/c.png", false, true},
		{"double star prefix", "**/tmp\n", "", "a/b/tmp", true, true},
		{"question mark", "file?.txt\n", "", "file1.txt", false, true},
		{"char class", "file[0-9].txt\n", "", "filea.txt", false, false},
		{"escaped hash", "\\#notes\n", "", "#notes", false, true},
		{"dockerignore anchored at root", "", "*.md\n", "sub/a.md", false, false},
		{"dockerignore root match", "", "*.md\n", "a.md", false, true},
		{"dockerignore double star", "", "**/*.md\n", "sub/a.md", false, true},
		{"dockerignore parent excluded", "", "node_modules\n", "node_modules/x/y.js", false, true},
		{"dockerignore exception keeps walking", "", "data\n!data/keep.csv\n", "data", true, false},
		{"dockerignore exception", "", "data\n!data/keep.csv\n", "data/keep.csv", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"x": ""}
			if tc.ispec != "" {
				files[IspecIgnoreFile] = tc.ispec
			}
			if tc.docker != "" {
				files[DockerIgnoreFile] = tc.docker
			}
			ig, err := LoadIgnorer(fixture(t, files))
			if err != nil {
				t.Fatal(err)
			}
			if got := ig.Ignored(tc.path, tc.dir); got != tc.want {
				t.Errorf("Ignored(%q, dir=%v) = %v, want %v", tc.path, tc.dir, got, tc.want)
			}
		})
	}
}

// TestIgnoredFilesLeaveTheTree: an ignored folder is not walked at all.
func TestIgnoredFilesLeaveTheTree(t *testing.T) {
	dir := fixture(t, map[string]string{
		IspecIgnoreFile:        "build/\n*.tmp\n",
		"src/main.py":          "print(1)\n",
		"src/x.tmp":            "junk",
		"build/out/bin":        "junk",
		".git/objects/ab/cdef": "junk",
	})
	ig, err := LoadIgnorer(dir)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := HashTree(t.Context(), dir, ig)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tree.Entries {
		got = append(got, e.Path)
	}
	want := []string{".", IspecIgnoreFile, "src", "src/main.py"}
	if len(got) != len(want) {
		t.Fatalf("entries = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entries = %v, want %v", got, want)
			break
		}
	}
}
