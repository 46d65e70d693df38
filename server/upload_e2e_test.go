package server_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/spec"
)

// writeRandom writes size incompressible bytes from a seeded generator.
func writeRandom(t testing.TB, p string, seed uint64, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	if _, err := io.CopyN(f, rand.NewChaCha8(key), size); err != nil {
		t.Fatal(err)
	}
}

// bigSpec writes a spec whose source tree holds n files of size bytes
// each (a different content per seed), and loads it.
func (h *harness) bigSpec(t testing.TB, seed uint64, n int, size int64) (*spec.Image, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(filepath.Join(data, "sub"), 0o755)
	for i := range n {
		writeRandom(t, filepath.Join(data, "sub", fmt.Sprintf("part-%d.bin", i)), seed*1000+uint64(i), size)
	}
	os.WriteFile(filepath.Join(data, "small.txt"), []byte("small file\n"), 0o644)
	os.WriteFile(filepath.Join(data, "empty.txt"), nil, 0o644)
	text := fmt.Sprintf("name: big-%d-%d\nregistry: %s/e2e\nbase_image: %s\nsource_root: data\n", time.Now().UnixNano(), seed, h.env.Registry, h.env.BaseBusybox)
	p := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := spec.Load(context.Background(), p, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return img, dir
}

func (h *harness) uploadBytes(t testing.TB) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ispec_upload_bytes_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("no ispec_upload_bytes_total metric")
	return 0
}

func rawAPI(t testing.TB, addr string) apiv1.ImageServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return apiv1.NewImageServiceClient(conn)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// snapshot lists a folder's entries with their sizes, modes and times, to
// see that nothing there was written.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %d", p, info.Mode(), info.Size(), info.ModTime().UnixNano())
		if info.Mode().IsRegular() {
			// Read since (relatime updates a fresh file's access time).
			fmt.Fprintf(&b, " %v", info.Sys().(*syscall.Stat_t).Atim)
		}
		b.WriteString("\n")
		return nil
	})
	return b.String()
}

// uploadsLeft lists what the server's uploads folder holds.
func uploadsLeft(t testing.TB, uploadDir string) []string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(uploadDir, "ispec-serve-*", "uploads", "*"))
	return matches
}

func TestUploadAttacksTouchNothingOutside(t *testing.T) {
	uploadDir := t.TempDir()
	h := start(t, setup{uploadDir: uploadDir})
	api := rawAPI(t, h.addr)
	canary := t.TempDir()
	os.WriteFile(filepath.Join(canary, "x"), []byte("host file\n"), 0o644)
	os.WriteFile(filepath.Join(canary, "secret"), []byte("host secret\n"), 0o600)
	before := snapshot(t, canary)
	climb := strings.Repeat("../", 40) + strings.TrimPrefix(canary, "/")
	specDoc := []byte(fmt.Sprintf("name: attack-%d\nregistry: %s/e2e\nbase_image: %s\nsource_root: src\n", time.Now().UnixNano(), h.env.Registry, h.env.BaseBusybox))
	dir := func(p string) *apiv1.File {
		return &apiv1.File{Path: p, Kind: apiv1.FileKind_FILE_KIND_DIRECTORY, Mode: 0o755}
	}
	file := func(p, content string) *apiv1.File {
		return &apiv1.File{Path: p, Kind: apiv1.FileKind_FILE_KIND_REGULAR, Mode: 0o644, Content: []byte(content), Size: int64(len(content)), Digest: sha([]byte(content))}
	}
	link := func(p, target string) *apiv1.File {
		return &apiv1.File{Path: p, Kind: apiv1.FileKind_FILE_KIND_SYMLINK, Target: target}
	}
	longPath := "src/" + strings.Repeat("a", 5000)
	for name, tc := range map[string]struct {
		files []*apiv1.File
		bad   string
	}{
		"file under an absolute symlink": {[]*apiv1.File{dir("src"), link("src/esc", canary), file("src/esc/x", "overwritten\n")}, "src/esc/x"},
		"file under a climbing symlink":  {[]*apiv1.File{dir("src"), link("src/esc", climb), file("src/esc/new", "planted\n")}, "src/esc/new"},
		"folder under a symlink":         {[]*apiv1.File{dir("src"), link("src/esc", canary), dir("src/esc/d"), file("src/esc/d/x", "x")}, "src/esc/d"},
		"symlink as the tree root":       {[]*apiv1.File{link("src", canary), file("src/x", "x")}, "src/x"},
		"climbing path":                  {[]*apiv1.File{dir("src"), file("src/../../x", "x")}, "src/../../x"},
		"absolute path":                  {[]*apiv1.File{dir("src"), file(filepath.Join(canary, "x"), "x")}, filepath.Join(canary, "x")},
		"unset kind":                     {[]*apiv1.File{dir("src"), {Path: "src/x", Content: []byte("x")}}, "src/x"},
		"folder not sent":                {[]*apiv1.File{file("src/x", "x")}, "src/x"},
		"5000-byte path":                 {[]*apiv1.File{dir("src"), file(longPath, "x")}, ensure.Short(longPath)},
	} {
		in := &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: specDoc, Files: tc.files}
		check := func(call string, err error) {
			t.Helper()
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument {
				t.Errorf("%s, %s: %v, want INVALID_ARGUMENT", name, call, err)
				return
			}
			if len(st.Message()) > 1024 || strings.Contains(st.Message(), uploadDir) {
				t.Errorf("%s, %s: message of %d bytes %q: want at most 1 KiB naming no server folder", name, call, len(st.Message()), st.Message())
			}
			var named bool
			for _, d := range st.Details() {
				if se, ok := d.(*apiv1.SpecErrors); ok && len(se.GetErrors()) > 0 && se.GetErrors()[0].GetFile() == tc.bad {
					named = true
				}
			}
			if !named {
				t.Errorf("%s, %s: %v names no %q", name, call, st.Message(), ensure.Short(tc.bad))
			}
		}
		_, err := api.Resolve(context.Background(), &apiv1.ResolveRequest{Input: in})
		check("Resolve", err)
		_, err = api.Lookup(context.Background(), &apiv1.LookupRequest{Items: []*apiv1.LookupItem{{Item: &apiv1.LookupItem_Spec{Spec: in}}}})
		check("Lookup", err)
		for _, omitted := range []bool{true, false} {
			stream, err := api.Build(context.Background(), &apiv1.BuildRequest{Input: in, FilesOmitted: omitted})
			if err == nil {
				_, err = stream.Recv()
			}
			check(fmt.Sprintf("Build files_omitted=%v", omitted), err)
		}
	}
	// Symlinks to absolute and climbing targets are kept as symlinks,
	// never followed: the image builds with them as sent.
	in := &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: specDoc, Files: []*apiv1.File{
		dir("src"), file("src/app.py", "print(1)\n"), link("src/abs", filepath.Join(canary, "secret")), link("src/climb", climb), link("src/up", ".."),
	}}
	stream, err := api.Build(context.Background(), &apiv1.BuildRequest{Input: in})
	if err != nil {
		t.Fatal(err)
	}
	var done *apiv1.Done
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("build with symlinks: %v", err)
		}
		if ev.GetDone() != nil {
			done = ev.GetDone()
		}
	}
	if done == nil {
		t.Fatal("the build with symlinks ended without done")
	}
	if after := snapshot(t, canary); after != before {
		t.Errorf("the folder outside the upload changed:\nbefore\n%s\nafter\n%s", before, after)
	}
	if left := uploadsLeft(t, uploadDir); len(left) != 0 {
		t.Errorf("uploads left behind: %v", left)
	}
}

func TestBlobMismatchIsRefused(t *testing.T) {
	h := start(t, setup{})
	api := rawAPI(t, h.addr)
	real := []byte("the blob's real bytes\n")
	for name, sent := range map[string][]byte{"other bytes": []byte("the blob's fake bytes\n"), "too short": real[:5], "too long": append(append([]byte{}, real...), '!')} {
		stream, err := api.WriteBlob(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&apiv1.WriteBlobRequest{Blob: &apiv1.Blob{Digest: sha(real), Size: int64(len(real))}, Data: sent, FinishWrite: true})
		_, err = stream.CloseAndRecv()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), sha(real)) {
			t.Errorf("%s: %v, want INVALID_ARGUMENT naming the digest", name, err)
		}
	}
	resp, err := api.FindMissingBlobs(context.Background(), &apiv1.FindMissingBlobsRequest{Blobs: []*apiv1.Blob{{Digest: sha(real), Size: int64(len(real))}}})
	if err != nil || len(resp.GetMissing()) != 1 {
		t.Fatalf("missing = %v, %v; want the refused blob still missing", resp, err)
	}
	// The right bytes, in two chunks, are stored; sent again, the server
	// answers before the bytes.
	for range 2 {
		stream, err := api.WriteBlob(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&apiv1.WriteBlobRequest{Blob: &apiv1.Blob{Digest: sha(real), Size: int64(len(real))}, Data: real[:7]})
		stream.Send(&apiv1.WriteBlobRequest{Data: real[7:], FinishWrite: true})
		if resp, err := stream.CloseAndRecv(); err != nil || resp.GetCommittedSize() != int64(len(real)) {
			t.Fatalf("write = %v, %v", resp, err)
		}
	}
	resp, err = api.FindMissingBlobs(context.Background(), &apiv1.FindMissingBlobsRequest{Blobs: []*apiv1.Blob{{Digest: sha(real), Size: int64(len(real))}}})
	if err != nil || len(resp.GetMissing()) != 0 {
		t.Errorf("missing = %v, %v; want none", resp, err)
	}
	// A build naming a blob the server lacks: FAILED_PRECONDITION naming
	// the file.
	absent := []byte("never sent\n")
	in := &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(fmt.Sprintf("name: lacks\nregistry: %s/e2e\nbase_image: %s\nsource_root: src\n", h.env.Registry, h.env.BaseBusybox)),
		Files: []*apiv1.File{{Path: "src", Kind: apiv1.FileKind_FILE_KIND_DIRECTORY, Mode: 0o755},
			{Path: "src/never.txt", Kind: apiv1.FileKind_FILE_KIND_REGULAR, Mode: 0o644, Digest: sha(absent), Size: int64(len(absent))}}}
	stream, err := api.Build(context.Background(), &apiv1.BuildRequest{Input: in})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(status.Convert(err).Message(), "src/never.txt") {
		t.Errorf("build without its blob: %v, want FAILED_PRECONDITION naming src/never.txt", err)
	}
}

func TestRebuildUploadsOnlyTheChangedFile(t *testing.T) {
	h := start(t, setup{})
	c := h.client(t)
	const parts, size = 4, 50 << 20 // a 200 MB tree
	img, dir := h.bigSpec(t, 7, parts, size)
	before := h.uploadBytes(t)
	if _, err := c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE); err != nil {
		t.Fatal(err)
	}
	first := h.uploadBytes(t) - before
	if want := float64(parts*size + len("small file\n")); first != want {
		t.Errorf("first build uploaded %.0f bytes, want the tree's %.0f", first, want)
	}
	// One file changes: only its bytes are sent.
	changed := filepath.Join(dir, "data", "sub", "part-2.bin")
	writeRandom(t, changed, 99, 3<<20)
	img, err := spec.Load(context.Background(), filepath.Join(dir, "spec.yaml"), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before = h.uploadBytes(t)
	res, err := c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if err != nil || res.Outcome != ensure.OutcomeBuilt {
		t.Fatalf("rebuild = %+v, %v", res, err)
	}
	again := h.uploadBytes(t) - before
	t.Logf("200 MB tree: first build uploaded %.0f bytes, the rebuild after one file changed %.0f", first, again)
	if again != 3<<20 {
		t.Errorf("the rebuild uploaded %.0f bytes, want the changed file's %d", again, 3<<20)
	}
	// The image exists: building it again uploads nothing.
	before = h.uploadBytes(t)
	if res, err := c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE); err != nil || res.Outcome != ensure.OutcomeFound {
		t.Fatalf("third build = %+v, %v; want found", res, err)
	}
	if n := h.uploadBytes(t) - before; n != 0 {
		t.Errorf("building an existing image uploaded %.0f bytes", n)
	}
}

func TestUploadDirSpellingGivesTheCLITag(t *testing.T) {
	real := t.TempDir()
	linked := filepath.Join(t.TempDir(), "via-link")
	if err := os.Symlink(real, linked); err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	relative, err := filepath.Rel(wd, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, dir := range map[string]string{"relative": relative, "symlinked": linked} {
		h := start(t, setup{uploadDir: dir})
		img, _ := h.bigSpec(t, 3, 2, 1<<10)
		want, err := ensure.Tag(img)
		if err != nil {
			t.Fatal(err)
		}
		res, err := h.client(t).Lookup(context.Background(), []*spec.Image{img})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Ref.Name() != want.Name() {
			t.Errorf("%s upload dir %s: the server's tag %s, the CLI's %s", name, dir, res[0].Ref.Name(), want.Name())
		}
		r, err := h.client(t).Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		if err != nil || r.Ref.Name() != want.Name() {
			t.Errorf("%s upload dir: built %+v, %v; want %s", name, r, err, want.Name())
		}
	}
}

func TestStaleUploadFoldersAreSwept(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "ispec-serve-12345")
	os.MkdirAll(filepath.Join(stale, "uploads", "ispec-upload-1"), 0o700)
	os.WriteFile(filepath.Join(stale, "uploads", "ispec-upload-1", "pip.secret"), []byte("token\n"), 0o600)
	other := filepath.Join(dir, "not-ours")
	os.Mkdir(other, 0o700)
	h1 := start(t, setup{uploadDir: dir})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the stale folder is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a folder that is not the server's was removed: %v", err)
	}
	// A second server on the same folder leaves the live one's alone.
	h2 := start(t, setup{uploadDir: dir})
	for _, h := range []*harness{h1, h2} {
		if _, err := h.client(t).Lookup(context.Background(), []*spec.Image{h.newSpec(t, "")}); err != nil {
			t.Errorf("server after the sweep: %v", err)
		}
	}
	if got, _ := filepath.Glob(filepath.Join(dir, "ispec-serve-*")); len(got) != 2 {
		t.Errorf("server folders %v, want two", got)
	}
}

// serveProc starts `ispec serve` as a process with uploadDir, and returns
// its address and process id. It gets SIGTERM when the test ends.
func serveProc(t *testing.T, env *testenv.Env, uploadDir string, args ...string) (string, int) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := pyBuildIspec(t, root)
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json", "--upload-dir", uploadDir}, args...)...)
	cmd.Env = pyIsolated(t, env)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs strings.Builder
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			var rec struct{ Msg, Listen string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" && rec.Listen != "" {
				select {
				case addrc <- rec.Listen:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { <-done; exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("ispec serve did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("ispec serve logs:\n%s", logs.String())
			mu.Unlock()
		}
	})
	select {
	case addr := <-addrc:
		return addr, cmd.Process.Pid
	case <-done:
		t.Fatal("ispec serve exited before serving")
	case <-time.After(60 * time.Second):
		t.Fatal("ispec serve did not start within 60s")
	}
	return "", 0
}

// peakRSS reads a process's peak resident set (VmHWM) in bytes.
func peakRSS(t testing.TB, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}

func TestFourLargeUploadsAtOnce(t *testing.T) {
	env := testenv.Load(t)
	uploadDir := t.TempDir()
	addr, pid := serveProc(t, env, uploadDir)
	h := &harness{env: env, addr: addr}
	const n, parts, size = 4, 7, 10 << 20 // 70 MB per caller
	imgs := make([]*spec.Image, n)
	for i := range imgs {
		imgs[i], _ = h.bigSpec(t, uint64(100+i), parts, size)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		c := h.client(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Build(context.Background(), imgs[i], ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("caller %d: %v", i, err)
		}
	}
	rss := peakRSS(t, pid)
	t.Logf("4 callers of 70 MB: the server's peak RSS is %d MiB", rss>>20)
	if rss > 256<<20 {
		t.Errorf("the server's peak RSS is %d MiB, want under 256 MiB", rss>>20)
	}
	if left := uploadsLeft(t, uploadDir); len(left) != 0 {
		t.Errorf("uploads left behind: %v", left)
	}
}
