package ciconfig

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// runScript runs a bash script with args, with env added to a small clean
// environment, and returns its stdout, stderr and exit code.
func runScript(t *testing.T, script string, args, env []string) (string, string, int) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// testRelease is the version the tests release.
const testRelease = "v0.0.1-ci"

// releaseSite runs scripts/release.sh once per test binary, for linux/amd64
// only (the other platform is the same script with another GOARCH, and a
// cold cross-compile costs minutes), into a folder laid out as the release
// download site: VERSION/FILE.
var releaseSite = sync.OnceValues(func() (string, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	site, err := os.MkdirTemp("", "ispec-release")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts/release.sh"), testRelease, filepath.Join(site, testRelease))
	cmd.Env = append(os.Environ(), "ISPEC_RELEASE_PLATFORMS=linux/amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("release.sh: %v\n%s", err, out)
	}
	return site, nil
})

// serveRelease serves a copy of the release site and counts requests.
func serveRelease(t *testing.T) (url, dist string, requests *atomic.Int32) {
	t.Helper()
	orig, err := releaseSite()
	if err != nil {
		t.Fatal(err)
	}
	site := t.TempDir()
	if err := os.CopyFS(site, os.DirFS(orig)); err != nil {
		t.Fatal(err)
	}
	requests = new(atomic.Int32)
	files := http.FileServer(http.Dir(site))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, filepath.Join(site, testRelease), requests
}

// The release script's archives and checksums are what the CI installer
// downloads: it verifies the checksum and installs; on a warm cache it
// downloads nothing; a tampered archive installs nothing.
func TestReleaseAndInstall(t *testing.T) {
	testenv.External(t) // builds a release: slow for the fast loop
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const version = testRelease
	url, dist, requests := serveRelease(t)
	sums, err := os.ReadFile(filepath.Join(dist, "ispec_"+version+"_checksums.txt"))
	if err != nil || !strings.Contains(string(sums), "ispec_"+version+"_linux_amd64.tar.gz") {
		t.Fatalf("checksums %q: %v", sums, err)
	}
	dir := filepath.Join(t.TempDir(), "tools")
	install := func() (string, string, int) {
		return runScript(t, filepath.Join(root, "deploy/ci/install.sh"), nil,
			[]string{"ISPEC_VERSION=" + version, "ISPEC_INSTALL_DIR=" + dir, "ISPEC_RELEASE_URL=" + url})
	}
	out, errOut, code := install()
	if code != 0 || strings.TrimSpace(out) != filepath.Join(dir, "ispec") || requests.Load() != 2 {
		t.Fatalf("install: exit %d, stdout %q, %d requests\n%s", code, out, requests.Load(), errOut)
	}
	v, err := exec.Command(filepath.Join(dir, "ispec"), "version").Output()
	if err != nil || !strings.HasPrefix(string(v), "ispec "+version+"\n") {
		t.Fatalf("installed ispec version: %q, %v", v, err)
	}

	// A warm cache (the CI cache restored the folder): nothing downloaded.
	start := time.Now()
	_, errOut, code = install()
	if code != 0 || requests.Load() != 2 || !strings.Contains(errOut, "already") {
		t.Fatalf("warm install: exit %d, %d requests\n%s", code, requests.Load(), errOut)
	}
	t.Logf("warm install took %v", time.Since(start))

	// Another archive under the same name: refused, nothing installed.
	archive := filepath.Join(dist, "ispec_"+version+"_linux_amd64.tar.gz")
	f, err := os.OpenFile(archive, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	os.RemoveAll(dir)
	_, errOut, code = install()
	if code != 3 || !strings.Contains(errOut, "checksum mismatch") {
		t.Fatalf("tampered archive: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "ispec")); !os.IsNotExist(err) {
		t.Errorf("a tampered archive was installed (%v)", err)
	}
}

// The action installs the release given, else the release it is pinned
// to, else uses the ispec on PATH; from-source and version exclude each
// other.
func TestActionVersionChoice(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	noIspec := t.TempDir() // a PATH without ispec: only bash's tools
	for _, tc := range []struct {
		name, input, source, ref string
		path                     bool
		code                     int
		version                  string
	}{
		{"input", "v0.6.0", "", "main", false, 0, "v0.6.0"},
		{"pinned action", "", "", "v0.6.1", false, 0, "v0.6.1"},
		{"branch, ispec on PATH", "", "", "main", true, 0, ""},
		{"branch, no ispec", "", "", "main", false, 2, ""},
		{"from source", "", "main", "main", false, 0, ""},
		{"both", "v0.6.0", "main", "", false, 2, ""},
		{"not a release", "latest", "", "", false, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			output := filepath.Join(t.TempDir(), "out")
			path := noIspec + ":/usr/bin:/bin"
			if tc.path {
				fake := t.TempDir()
				os.WriteFile(filepath.Join(fake, "ispec"), []byte("#!/bin/sh\n"), 0o755)
				path = fake + ":" + path
			}
			cmd := exec.Command("/bin/bash", filepath.Join(root, "deploy/ci/github/version.sh"))
			cmd.Env = []string{"PATH=" + path, "GITHUB_OUTPUT=" + output, "ISPEC_VERSION_INPUT=" + tc.input,
				"ISPEC_FROM_SOURCE=" + tc.source, "ISPEC_ACTION_REF=" + tc.ref}
			msg, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, msg)
			}
			if code == 0 {
				if got := parseOutputs(t, output)["version"]; got != tc.version {
					t.Errorf("version=%q, want %q", got, tc.version)
				}
			}
		})
	}
}

// With one image the action's digest and imageid outputs name it; with
// push: false it is written to an OCI tarball and never pushed.
func TestGitHubActionOneImage(t *testing.T) {
	env, bin, root := ciEnv(t)
	dir := specsFolder(t, env, false)
	for _, push := range []string{"false", "true"} {
		t.Run("push "+push, func(t *testing.T) {
			runner := t.TempDir()
			output := filepath.Join(runner, "output")
			cmd := exec.Command("bash", filepath.Join(root, "deploy/ci/github/prebuild.sh"))
			cmd.Dir = dir
			cmd.Env = append(baseEnv(t, env, bin), "GITHUB_OUTPUT="+output, "RUNNER_TEMP="+runner,
				"ISPEC_SPECS=images/a/*.yaml", "ISPEC_PUSH="+push, "ISPEC_NO_CACHE=true")
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("prebuild.sh: %v\n%s", err, msg)
			}
			outs := parseOutputs(t, output)
			if !strings.HasPrefix(outs["digest"], "sha256:") {
				t.Fatalf("digest %q; outputs %v", outs["digest"], outs)
			}
			tars, _ := filepath.Glob(filepath.Join(runner, "ispec-images", "app_*.tar"))
			if push == "false" {
				if outs["imageid"] != "" || outs["image-args"] != "" || len(tars) != 1 {
					t.Errorf("push false: imageid %q image-args %q tarballs %v", outs["imageid"], outs["image-args"], tars)
				}
				return
			}
			if !strings.HasSuffix(outs["imageid"], "@"+outs["digest"]) || len(tars) != 0 {
				t.Errorf("push true: imageid %q digest %q tarballs %v", outs["imageid"], outs["digest"], tars)
			}
		})
	}
}

// alpineShell returns a PATH of busybox's applets alone, as the template's
// alpine image has, or skips outside CI when busybox is missing.
func alpineShell(t *testing.T) string {
	t.Helper()
	testenv.External(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		testenv.Missing(t, "busybox (Debian's busybox-static, installed by scripts/devenv.sh up) is missing: %v", err)
	}
	dir := t.TempDir()
	for _, app := range []string{"sh", "wget", "sha256sum", "tar", "grep", "uname", "mkdir", "rm", "head", "cat", "gzip", "printf", "echo", "tr", "base64"} {
		if err := os.Symlink(bb, filepath.Join(dir, app)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The GitLab template's before_script downloads the release in an alpine
// job (busybox's sh and wget), checks its sha256, keeps it in the job's
// cache folder, and downloads nothing when the cache has it.
func TestGitLabInstallsTheRelease(t *testing.T) {
	var tmpl map[string]gitlabJob
	if err := yaml.Unmarshal(repoFile(t, "deploy/ci/gitlab/ispec.gitlab-ci.yml"), &tmpl); err != nil {
		t.Fatal(err)
	}
	install := tmpl[".ispec-prebuild"].BeforeScript[0]
	path := alpineShell(t)
	url, dist, requests := serveRelease(t)
	project := t.TempDir()
	runJob := func(version string) (string, int) {
		cmd := exec.Command(filepath.Join(path, "sh"), "-e", "-c", install)
		cmd.Dir = project
		cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir(), "CI_PROJECT_DIR=" + project,
			"ISPEC_VERSION=" + version, "ISPEC_RELEASE_URL=" + url}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := runJob(testRelease)
	if code != 0 || !strings.Contains(out, "ispec "+testRelease) || requests.Load() != 2 {
		t.Fatalf("install: exit %d, %d requests\n%s", code, requests.Load(), out)
	}
	out, code = runJob(testRelease)
	if code != 0 || requests.Load() != 2 {
		t.Fatalf("cached install: exit %d, %d requests\n%s", code, requests.Load(), out)
	}
	if out, code := runJob(""); code != 2 || !strings.Contains(out, "set ISPEC_VERSION") {
		t.Errorf("no version: exit %d\n%s", code, out)
	}
	archive := filepath.Join(dist, "ispec_"+testRelease+"_linux_amd64.tar.gz")
	f, err := os.OpenFile(archive, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("tampered"))
	f.Close()
	os.RemoveAll(filepath.Join(project, ".ispec-bin"))
	if out, code := runJob(testRelease); code != 3 || !strings.Contains(out, "checksum mismatch") {
		t.Errorf("tampered archive: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(project, ".ispec-bin", testRelease, "ispec")); !os.IsNotExist(err) {
		t.Errorf("a tampered archive was installed (%v)", err)
	}
}
