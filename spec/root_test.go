package spec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostSecret is the content of the host files the attacks aim at: no
// error may show it.
const hostSecret = "root:x:0:0:the host's secret\n"

// outsideSpec writes, outside any upload, a spec file whose content
// would show in an error if it were read (it is not valid YAML), and a
// plain host file; it returns their folder.
func outsideSpec(t *testing.T) string {
	t.Helper()
	return fixture(t, map[string]string{"base.yaml": "name: [" + hostSecret, "secret": hostSecret})
}

// fifo makes a named pipe at p. Opening it for reading blocks until a
// writer comes, so a loader that opens it without care hangs.
func fifo(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
}

// symlink makes a symlink at p.
func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

// promptly runs load and fails the test if it does not return within a
// few seconds (a named pipe opened for reading blocks for ever).
func promptly(t *testing.T, load func() (*Image, error)) (*Image, error) {
	t.Helper()
	type result struct {
		img *Image
		err error
	}
	done := make(chan result, 1)
	go func() {
		img, err := load()
		done <- result{img, err}
	}()
	select {
	case r := <-done:
		return r.img, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("Load did not return within 10s: it blocked on a file")
		return nil, nil
	}
}

// rootErr loads file under a root at dir, promptly, and returns the
// error it must give.
func rootErr(t *testing.T, dir, file string) error {
	t.Helper()
	_, err := promptly(t, func() (*Image, error) { return loadRoot(t, dir, file) })
	if err == nil {
		t.Fatalf("Load(%s) under a root: want an error, got none", file)
	}
	return err
}

// hostErr loads file as the CLI does, promptly, and returns the error it
// must give.
func hostErr(t *testing.T, dir, file string) error {
	t.Helper()
	_, err := promptly(t, func() (*Image, error) {
		return Load(context.Background(), filepath.Join(dir, file), Options{})
	})
	if err == nil {
		t.Fatalf("Load(%s): want an error, got none", file)
	}
	return err
}

// TestRootedBaseSpecStaysInTheUpload: under a root, a nested base spec
// by absolute path, by .. out of the root, or through a symlink that
// leads out is an invalid spec naming the file, line and field, and the
// file outside is never read.
func TestRootedBaseSpecStaysInTheUpload(t *testing.T) {
	out := outsideSpec(t)
	for _, tc := range []struct {
		name  string
		files map[string]string
		links map[string]string // link → target; @out is the outside folder
		file  string
		want  want
	}{
		{name: "absolute", files: map[string]string{"s.yaml": "name: a\nbase_image: {spec: @out/base.yaml}\n"},
			file: "s.yaml", want: want{"s.yaml", 2, "base_image.spec", "is absolute"}},
		{name: "absolute /etc/passwd", files: map[string]string{"s.yaml": "name: a\nbase_image:\n  spec: /etc/passwd\n"},
			file: "s.yaml", want: want{"s.yaml", 3, "base_image.spec", "is absolute"}},
		{name: "dot dot", files: map[string]string{"s.yaml": "name: a\nbase_image: {spec: ../base.yaml}\n"},
			file: "s.yaml", want: want{"s.yaml", 2, "base_image.spec", "climbs out of the upload"}},
		{name: "dot dot from a folder", files: map[string]string{"app/s.yaml": "name: a\nbase_image: {spec: ../../../../../../../../../../@out/base.yaml}\n"},
			file: "app/s.yaml", want: want{"app/s.yaml", 2, "base_image.spec", "climbs out of the upload"}},
		{name: "symlink to an absolute path", files: map[string]string{"s.yaml": "name: a\nbase_image: {spec: base.yaml}\n"},
			links: map[string]string{"base.yaml": "@out/base.yaml"},
			file:  "s.yaml", want: want{"s.yaml", 2, "base_image.spec", "leads outside the upload through the symlink base.yaml -> "}},
		{name: "symlink that climbs out", files: map[string]string{"app/s.yaml": "name: a\nbase_image: {spec: base.yaml}\n"},
			links: map[string]string{"app/base.yaml": "../../../../../../../../../../@out/base.yaml"},
			file:  "app/s.yaml", want: want{"app/s.yaml", 2, "base_image.spec", "leads outside the upload through the symlink app/base.yaml"}},
		{name: "symlinked folder", files: map[string]string{"s.yaml": "name: a\nbase_image: {spec: lib/base.yaml}\n"},
			links: map[string]string{"lib": "@out"},
			file:  "s.yaml", want: want{"s.yaml", 2, "base_image.spec", "through the symlink lib -> "}},
		{name: "spec file itself a symlink out", links: map[string]string{"s.yaml": "@out/base.yaml"},
			file: "s.yaml", want: want{"s.yaml", 0, "", "leads outside the upload"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for p, c := range tc.files {
				files[p] = strings.ReplaceAll(c, "@out", out)
			}
			dir := fixture(t, files)
			for link, target := range tc.links {
				symlink(t, strings.ReplaceAll(target, "@out", out), filepath.Join(dir, filepath.FromSlash(link)))
			}
			checkWants(t, "", rootErr(t, dir, tc.file), []want{tc.want})
		})
	}
}

// TestBaseSpecOutsideTheFolderForTheCLI: the CLI reads ../base.yaml (a
// monorepo); a server reads it when it is in the upload, and not when
// the upload is the spec's own folder.
func TestBaseSpecOutsideTheFolderForTheCLI(t *testing.T) {
	dir := fixture(t, map[string]string{
		"base.yaml":      "name: base\napt_packages: [jq]\n",
		"apps/one.yaml":  "name: one\nbase_image: {spec: ../base.yaml}\n",
		"apps/link.yaml": "name: two\nbase_image: {spec: shared.yaml}\n",
	})
	symlink(t, "../base.yaml", filepath.Join(dir, "apps", "shared.yaml"))
	host := load(t, dir, "apps/one.yaml")
	if host.Parent == nil || host.Parent.Spec.Name != "base" {
		t.Fatalf("the CLI did not load ../base.yaml: %+v", host.Parent)
	}
	rooted, err := loadRoot(t, dir, "apps/one.yaml")
	if err != nil {
		t.Fatalf("under a root at the monorepo: %v", err)
	}
	if rooted.Identity != host.Identity || rooted.Parent.File != "base.yaml" || rooted.File != "apps/one.yaml" {
		t.Errorf("under a root: %+v (parent %s), want %+v (parent base.yaml)", rooted.Identity, rooted.Parent.File, host.Identity)
	}
	// A symlink that stays inside the root is followed.
	if img, err := loadRoot(t, dir, "apps/link.yaml"); err != nil || img.Parent.Spec.Name != "base" {
		t.Errorf("a symlink inside the root: %v", err)
	}
	checkWants(t, "", rootErr(t, filepath.Join(dir, "apps"), "one.yaml"), []want{{"one.yaml", 2, "base_image.spec", "climbs out of the upload"}})
	checkWants(t, "", rootErr(t, filepath.Join(dir, "apps"), "link.yaml"), []want{{"link.yaml", 2, "base_image.spec", "leads outside the upload through the symlink shared.yaml -> ../base.yaml"}})
}

// TestLockAndIgnoreFilesMustBeRegular: a lock file or an ignore file that
// is a device, a named pipe, or (under a root) a symlink out of it is an
// invalid spec naming the file; loading never blocks and never shows the
// content of a host file.
func TestLockAndIgnoreFilesMustBeRegular(t *testing.T) {
	out := outsideSpec(t)
	hostFifo := filepath.Join(t.TempDir(), "pipe")
	fifo(t, hostFifo)
	files := map[string]string{"s.yaml": "name: a\ncopy: [data]\nsource_root: src\n", "data/x": "x\n", "src/m.py": "\n"}
	type target struct {
		name string
		make func(t *testing.T, p string) // makes the file at p
		root string                       // the message under a root
		host string                       // the message for the CLI; "": it loads
	}
	targets := []target{
		{"dev zero", func(t *testing.T, p string) { symlink(t, "/dev/zero", p) }, "leads outside the upload through the symlink", "is not a regular file (it is a device)"},
		{"fifo", func(t *testing.T, p string) { fifo(t, p) }, "is not a regular file (it is a named pipe)", "is not a regular file (it is a named pipe)"},
		{"symlink to a fifo", func(t *testing.T, p string) { symlink(t, hostFifo, p) }, "leads outside the upload through the symlink", "is not a regular file (it is a named pipe)"},
		{"host file", func(t *testing.T, p string) { symlink(t, filepath.Join(out, "secret"), p) }, "leads outside the upload through the symlink", ""},
	}
	for _, file := range []struct {
		path  string
		file  string // the FieldError's file
		field string
	}{
		{"s.yaml.lock", "s.yaml.lock", ""},
		{".dockerignore", "s.yaml", "copy"},
		{".ispecignore", "s.yaml", "copy"},
		{"src/.dockerignore", "s.yaml", "source_root"},
		{"src/.ispecignore", "s.yaml", "source_root"},
	} {
		for _, tg := range targets {
			t.Run(file.path+"/"+tg.name, func(t *testing.T) {
				dir := fixture(t, files)
				tg.make(t, filepath.Join(dir, filepath.FromSlash(file.path)))
				checkWants(t, "", rootErr(t, dir, "s.yaml"), []want{{file.file, 0, file.field, tg.root}})
				if tg.host == "" {
					return
				}
				checkWants(t, dir, hostErr(t, dir, "s.yaml"), []want{{file.file, 0, file.field, tg.host}})
			})
		}
	}
}

// TestRequirementsMustBeRegular: a requirements file, or a file it
// includes, that is a named pipe, a device or a symlink out is refused
// promptly, with or without a root.
func TestRequirementsMustBeRegular(t *testing.T) {
	out := outsideSpec(t)
	for _, tc := range []struct {
		name string
		make func(t *testing.T, dir string)
		want want
	}{
		{"requirements is a fifo", func(t *testing.T, dir string) { fifo(t, filepath.Join(dir, "reqs.txt")) },
			want{"s.yaml", 2, "requirements", "reqs.txt is not a regular file (it is a named pipe)"}},
		{"included file is a fifo", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "reqs.txt"), []byte("numpy\n-r inc.txt\n"), 0o644)
			fifo(t, filepath.Join(dir, "inc.txt"))
		}, want{"reqs.txt", 2, "requirements", "inc.txt is not a regular file (it is a named pipe)"}},
		{"included file links to /dev/zero", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "reqs.txt"), []byte("-c inc.txt\n"), 0o644)
			symlink(t, "/dev/zero", filepath.Join(dir, "inc.txt"))
		}, want{"reqs.txt", 1, "requirements", "leads outside the spec file's folder through the symlink inc.txt -> /dev/zero"}},
		{"included file links to a host file", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "reqs.txt"), []byte("x\n-r inc.txt\n"), 0o644)
			symlink(t, filepath.Join(out, "secret"), filepath.Join(dir, "inc.txt"))
		}, want{"reqs.txt", 2, "requirements", "leads outside the spec file's folder through the symlink inc.txt"}},
		{"included through a symlinked folder", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "reqs.txt"), []byte("-r lib/secret\n"), 0o644)
			symlink(t, out, filepath.Join(dir, "lib"))
		}, want{"reqs.txt", 1, "requirements", "through the symlink lib ->"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture(t, map[string]string{"s.yaml": reqSpec})
			tc.make(t, dir)
			checkWants(t, "", rootErr(t, dir, "s.yaml"), []want{tc.want})
			checkWants(t, dir, hostErr(t, dir, "s.yaml"), []want{tc.want})
		})
	}
}

// TestSpecFileMustBeRegular: the spec file itself (and a nested one) is
// read only when it is a regular file.
func TestSpecFileMustBeRegular(t *testing.T) {
	dir := fixture(t, map[string]string{"s.yaml": "name: a\nbase_image: {spec: base.yaml}\n"})
	fifo(t, filepath.Join(dir, "base.yaml"))
	fifo(t, filepath.Join(dir, "pipe.yaml"))
	checkWants(t, "", rootErr(t, dir, "s.yaml"), []want{{"base.yaml", 0, "", "the spec file is not a regular file (it is a named pipe)"}})
	checkWants(t, dir, hostErr(t, dir, "pipe.yaml"), []want{{"pipe.yaml", 0, "", "the spec file is not a regular file (it is a named pipe)"}})
}

// chain writes n specs, each the base of the previous one: s.yaml, then
// b1.yaml ... bn.yaml.
func chain(n int) map[string]string {
	files := map[string]string{"s.yaml": "name: s\nbase_image: {spec: b1.yaml}\n"}
	for i := 1; i < n; i++ {
		files[fmt.Sprintf("b%d.yaml", i)] = fmt.Sprintf("name: b%d\nbase_image: {spec: b%d.yaml}\n", i, i+1)
	}
	files[fmt.Sprintf("b%d.yaml", n)] = fmt.Sprintf("name: b%d\n", n)
	return files
}

// TestNestedDepthIsBounded: a chain of MaxBaseDepth base specs loads; one
// more, or a chain of 300, is an invalid spec naming the file whose base
// is one too many, with or without a root.
func TestNestedDepthIsBounded(t *testing.T) {
	dir := fixture(t, chain(MaxBaseDepth))
	img := load(t, dir, "s.yaml")
	depth := 0
	for p := img.Parent; p != nil; p = p.Parent {
		depth++
	}
	if depth != MaxBaseDepth {
		t.Errorf("loaded %d base specs, want %d", depth, MaxBaseDepth)
	}
	if _, err := loadRoot(t, dir, "s.yaml"); err != nil {
		t.Errorf("under a root: %v", err)
	}
	for _, n := range []int{MaxBaseDepth + 1, 300} {
		dir := fixture(t, chain(n))
		deepest := fmt.Sprintf("b%d.yaml", MaxBaseDepth)
		w := []want{{deepest, 2, "base_image.spec", fmt.Sprintf("more than %d nested base specs below", MaxBaseDepth)}}
		start := time.Now()
		checkWants(t, "", rootErr(t, dir, "s.yaml"), w)
		checkWants(t, dir, hostErr(t, dir, "s.yaml"), w)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("a chain of %d took %s to refuse", n, d)
		}
	}
}

// TestRootedLoadGivesTheSameImage: every golden spec, and one with a lock,
// ignore files, includes and symlinks inside its folder, has the same
// identity and document under a root as for the CLI.
func TestRootedLoadGivesTheSameImage(t *testing.T) {
	cases := map[string]map[string]string{}
	for name, files := range goldenCases {
		cases[name] = files
	}
	cases["non-utf8-folder"] = map[string]string{"spec.yaml": "name: bytes\ncopy: [data]\n", "data/d\xe9/x.txt": "x\n", "data/a/y.txt": "y\n"}
	cases["spec inside its source_root"] = map[string]string{"app/spec.yaml": "name: own\nsource_root: .\n", "app/m.py": "\n"}
	cases["everything"] = map[string]string{
		"app/s.yaml":            "name: all\nbase_image: {spec: ../shared/base.yaml}\nrequirements: reqs.txt\ncopy: [conf]\nsource_root: src\npip_secret_mounts: [[netrc, /root/.netrc]]\n",
		"app/real/reqs.txt":     "-r more.txt\nnumpy\n",
		"app/real/more.txt":     "pyyaml\n",
		"app/conf/a.ini":        "a\n",
		"app/conf/b.tmp":        "b\n",
		"app/.ispecignore":      "*.tmp\n",
		"app/src/m.py":          "\n",
		"app/src/skip.log":      "\n",
		"app/src/.dockerignore": "*.log\n",
		"app/netrc":             "machine x\n",
		"shared/base.yaml":      "name: base\nbase_image: debian:bookworm-slim\n",
		"shared/base.yaml.lock": `{"version": 1, "base_image": {"ref": "docker.io/library/debian:bookworm-slim", "digest": "sha256:` + strings.Repeat("a", 64) +
			`", "platforms": {"linux/amd64": "sha256:` + strings.Repeat("b", 64) + `"}}}`,
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			dir := fixture(t, files)
			file := goldenFile(files)
			if name == "everything" {
				symlink(t, "real/reqs.txt", filepath.Join(dir, "app", "reqs.txt"))
				symlink(t, "real/more.txt", filepath.Join(dir, "app", "more.txt"))
				symlink(t, "m.py", filepath.Join(dir, "app", "src", "link.py"))
				file = "app/s.yaml"
			}
			host := load(t, dir, file)
			rooted, err := loadRoot(t, dir, file)
			if err != nil {
				t.Fatal(err)
			}
			if rooted.Identity != host.Identity || string(rooted.Document) != string(host.Document) {
				t.Errorf("under a root:\n%+v\n%s\nfor the CLI:\n%+v\n%s", rooted.Identity, rooted.Document, host.Identity, host.Document)
			}
			if rooted.Dir != host.Dir || strings.Join(rooted.Secrets, " ") != strings.Join(host.Secrets, " ") {
				t.Errorf("under a root Dir %s, secrets %v; for the CLI %s, %v", rooted.Dir, rooted.Secrets, host.Dir, host.Secrets)
			}
			if name == "everything" && (rooted.Parent.Lock == nil || host.Parent.Lock == nil) {
				t.Errorf("the base spec's lock file was not read (root %v, CLI %v)", rooted.Parent.Lock, host.Parent.Lock)
			}
		})
	}
}
