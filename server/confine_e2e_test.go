package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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

// hostSecret is in the host files the attacks aim at: no answer may
// carry it.
const hostSecret = "the host's secret"

// callTimeout bounds each call: an attack that makes the server block
// (on a named pipe, on /dev/zero) fails the test instead of hanging it.
const callTimeout = 20 * time.Second

// hostFiles makes, outside any upload, a spec file that is not valid
// YAML and would be quoted by an error if it were read, a plain file, and
// a named pipe (opening it for reading blocks until a writer comes).
func hostFiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"base.yaml": "name: [" + hostSecret + "\n", "secret": hostSecret + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func regular(p, content string) *apiv1.File {
	return &apiv1.File{Path: p, Kind: apiv1.FileKind_FILE_KIND_REGULAR, Mode: 0o644, Size: int64(len(content)), Content: []byte(content)}
}

func folder(p string) *apiv1.File {
	return &apiv1.File{Path: p, Kind: apiv1.FileKind_FILE_KIND_DIRECTORY, Mode: 0o755}
}

func link(p, target string) *apiv1.File {
	return &apiv1.File{Path: p, Kind: apiv1.FileKind_FILE_KIND_SYMLINK, Mode: 0o777, Target: target}
}

func rawClient(t *testing.T, h *harness) apiv1.ImageServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return apiv1.NewImageServiceClient(conn)
}

// calls are the four methods that load an upload, each returning its
// error.
func calls(c apiv1.ImageServiceClient) map[string]func(ctx context.Context, in *apiv1.SpecInput) error {
	return map[string]func(ctx context.Context, in *apiv1.SpecInput) error{
		"Resolve": func(ctx context.Context, in *apiv1.SpecInput) error {
			_, err := c.Resolve(ctx, &apiv1.ResolveRequest{Input: in})
			return err
		},
		"Lookup": func(ctx context.Context, in *apiv1.SpecInput) error {
			_, err := c.Lookup(ctx, &apiv1.LookupRequest{Items: []*apiv1.LookupItem{{Item: &apiv1.LookupItem_Spec{Spec: in}}}})
			return err
		},
		"Lock": func(ctx context.Context, in *apiv1.SpecInput) error {
			_, err := c.Lock(ctx, &apiv1.LockRequest{Input: in})
			return err
		},
		"Build": func(ctx context.Context, in *apiv1.SpecInput) error {
			stream, err := c.Build(ctx, &apiv1.BuildRequest{Input: in})
			if err == nil {
				_, err = stream.Recv()
			}
			return err
		},
	}
}

// TestServerReadsOnlyItsUpload: each upload below tries to make the
// server read a host file (a nested base spec by absolute path, by .., or
// through a symlink; a lock, ignore or requirements file linked to
// /dev/zero, a named pipe or a host file) or fan out (300 nested specs).
// Resolve, Lookup, Lock and Build each answer INVALID_ARGUMENT at once,
// naming the file and field in the upload, and no answer carries the host
// file's content. (Lock reads the lock file from the request itself: a
// lock file that is a link is refused as not a regular file.)
func TestServerReadsOnlyItsUpload(t *testing.T) {
	h := start(t, setup{})
	c := rawClient(t, h)
	host := hostFiles(t)
	head := fmt.Sprintf("name: attack\nregistry: %s/e2e\n", h.env.Registry)
	plain := head + "base_image: " + h.env.BaseBusybox + "\n"
	climb := strings.Repeat("../", 30)
	chain := []*apiv1.File{}
	for i := 1; i <= 300; i++ {
		next := fmt.Sprintf("base_image: {spec: b%d.yaml}\n", i+1)
		if i == 300 {
			next = "base_image: " + h.env.BaseBusybox + "\n"
		}
		chain = append(chain, regular(fmt.Sprintf("b%d.yaml", i), fmt.Sprintf("name: b%d\n%s", i, next)))
	}
	type attack struct {
		name  string
		spec  string
		files []*apiv1.File
		file  string // the spec error's file
		field string
		msg   string
	}
	var attacks []attack
	// Nested base specs.
	attacks = append(attacks,
		attack{name: "base spec by absolute path", spec: head + "base_image: {spec: " + host + "/base.yaml}\n",
			file: "spec.yaml", field: "base_image.spec", msg: "is absolute"},
		attack{name: "base spec by dot dot", spec: head + "base_image: {spec: " + climb + host + "/base.yaml}\n",
			file: "spec.yaml", field: "base_image.spec", msg: "climbs out of the upload"})
	for name, target := range map[string]string{"an absolute": host + "/base.yaml", "a climbing": climb + host + "/base.yaml"} {
		attacks = append(attacks, attack{name: "base spec through " + name + " symlink", spec: head + "base_image: {spec: base.yaml}\n",
			files: []*apiv1.File{link("base.yaml", target)}, file: "spec.yaml", field: "base_image.spec", msg: "leads outside the upload"})
	}
	attacks = append(attacks, attack{name: "base spec under a symlinked folder", spec: head + "base_image: {spec: lib/base.yaml}\n",
		files: []*apiv1.File{link("lib", host)}, file: "spec.yaml", field: "base_image.spec", msg: "leads outside the upload"})
	// Lock, ignore and requirements files.
	for name, target := range map[string]string{"/dev/zero": "/dev/zero", "a named pipe": host + "/pipe", "a host file": host + "/secret"} {
		attacks = append(attacks,
			attack{name: "lock file linked to " + name, spec: plain, files: []*apiv1.File{link("spec.yaml.lock", target)},
				file: "spec.yaml.lock", msg: "leads outside the upload"},
			attack{name: ".dockerignore linked to " + name, spec: plain + "copy: [data]\n",
				files: []*apiv1.File{folder("data"), regular("data/x", "x\n"), link(".dockerignore", target)}, file: "spec.yaml", field: "copy", msg: "leads outside the upload"},
			attack{name: ".ispecignore linked to " + name, spec: plain + "source_root: src\n",
				files: []*apiv1.File{folder("src"), regular("src/m.py", "\n"), link("src/.ispecignore", target)}, file: "spec.yaml", field: "source_root", msg: "leads outside the upload"},
			attack{name: "requirements linked to " + name, spec: plain + "requirements: reqs.txt\n",
				files: []*apiv1.File{link("reqs.txt", target)}, file: "spec.yaml", field: "requirements", msg: "leads outside the spec file's folder"},
			attack{name: "requirements include linked to " + name, spec: plain + "requirements: reqs.txt\n",
				files: []*apiv1.File{regular("reqs.txt", "numpy\n-r inc.txt\n"), link("inc.txt", target)}, file: "reqs.txt", field: "requirements", msg: "leads outside the spec file's folder"},
		)
	}
	attacks = append(attacks, attack{name: "300 nested base specs", spec: head + "base_image: {spec: b1.yaml}\n", files: chain,
		file: fmt.Sprintf("b%d.yaml", spec.MaxBaseDepth), field: "base_image.spec", msg: fmt.Sprintf("more than %d nested base specs below spec.yaml", spec.MaxBaseDepth)})

	for _, a := range attacks {
		for method, call := range calls(c) {
			t.Run(a.name+"/"+method, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				defer cancel()
				err := call(ctx, &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(a.spec), Files: a.files})
				msg := a.msg
				if method == "Lock" && a.file == "spec.yaml.lock" {
					msg = "not a regular file"
				}
				st := status.Convert(err)
				if st.Code() != codes.InvalidArgument {
					t.Fatalf("%v, want INVALID_ARGUMENT", err)
				}
				all := st.Message()
				var found bool
				for _, d := range st.Details() {
					se, ok := d.(*apiv1.SpecErrors)
					if !ok {
						continue
					}
					for _, e := range se.GetErrors() {
						all += "\n" + e.GetMessage()
						if e.GetFile() == a.file && e.GetField() == a.field && strings.Contains(e.GetMessage(), msg) {
							found = true
						}
					}
				}
				if !found {
					t.Errorf("no spec error %s: %s: ...%s...; got %v", a.file, a.field, msg, err)
				}
				if strings.Contains(all, hostSecret) {
					t.Errorf("the answer carries a host file's content: %s", all)
				}
			})
		}
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// TestLookupOffTheAllowlistIsDenied: with --allowed-lookup-registries, a
// Lookup of a tag elsewhere, of a spec whose registry is elsewhere, and a
// Build whose base image is elsewhere are PERMISSION_DENIED and nothing
// connects to that address; the allowed registry answers as before.
// Without the allowlist the same Lookup does reach the address, and the
// answer carries its status, never its body.
func TestLookupOffTheAllowlistIsDenied(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	off := lis.Addr().String()
	h := start(t, setup{lookups: []string{testenv.Load(t).Registry}})
	c := rawClient(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()

	_, err = c.Lookup(ctx, &apiv1.LookupRequest{Items: []*apiv1.LookupItem{{Item: &apiv1.LookupItem_Ref{Ref: off + "/e2e/probe:v1"}}}})
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), off) {
		t.Errorf("lookup of a ref off the allowlist: %v, want PERMISSION_DENIED naming %s", err, off)
	}
	offSpec := &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(fmt.Sprintf("name: probe\nregistry: %s/e2e\n", off))}
	_, err = c.Lookup(ctx, &apiv1.LookupRequest{Items: []*apiv1.LookupItem{{Item: &apiv1.LookupItem_Spec{Spec: offSpec}}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("lookup of a spec whose registry is off the allowlist: %v, want PERMISSION_DENIED", err)
	}
	offBase := &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(fmt.Sprintf("name: probe-%d\nregistry: %s/e2e\nbase_image: %s/e2e/base:1\n", time.Now().UnixNano(), h.env.Registry, off))}
	err = calls(c)["Build"](ctx, offBase)
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(status.Convert(err).Message(), "base image") {
		t.Errorf("build from a base image off the allowlist: %v, want PERMISSION_DENIED naming the base image", err)
	}
	if len(h.p.Builds()) != 0 {
		t.Error("a build was started")
	}

	// The allowed registry still answers, and a build from it works.
	res, err := c.Lookup(ctx, &apiv1.LookupRequest{Items: []*apiv1.LookupItem{{Item: &apiv1.LookupItem_Ref{Ref: h.env.Registry + "/e2e/absent:v1"}}}})
	if err != nil || res.GetResults()[0].GetState() != apiv1.LookupState_LOOKUP_STATE_ABSENT {
		t.Errorf("lookup on the allowed registry: %v, %v; want absent", res, err)
	}
	img := h.newSpec(t, "")
	if _, err := h.client(t).Build(ctx, img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE); err != nil {
		t.Errorf("build from and to the allowed registry: %v", err)
	}

	// Nothing reached the address off the allowlist: a connection the
	// server had made would be waiting in the listener's queue.
	lis.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if conn, err := lis.Accept(); err == nil {
		conn.Close()
		t.Error("the server connected to an address off the allowlist")
	}

	// Without the allowlist the lookup reaches such an address, and its
	// answer's body stays there.
	var accepted atomic.Int32
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, "<html>internal page: %s</html>", hostSecret)
	}))
	ts.Listener = countingListener{Listener: ts.Listener, n: &accepted}
	ts.Start()
	defer ts.Close()
	open := rawClient(t, start(t, setup{}))
	res, err = open.Lookup(ctx, &apiv1.LookupRequest{Items: []*apiv1.LookupItem{{Item: &apiv1.LookupItem_Ref{Ref: ts.Listener.Addr().String() + "/e2e/probe:v1"}}}})
	if err != nil || res.GetResults()[0].GetState() != apiv1.LookupState_LOOKUP_STATE_UNKNOWN {
		t.Fatalf("lookup without an allowlist: %v, %v; want unknown", res, err)
	}
	if msg := res.GetResults()[0].GetError(); !strings.Contains(msg, "403") || strings.Contains(msg, hostSecret) {
		t.Errorf("the lookup's error %q should give the status and not the body", msg)
	}
	if accepted.Load() == 0 {
		t.Error("without an allowlist the lookup made no connection: the check above proves nothing")
	}
}
