package server_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/spec"
)

// TestLockRefusals: Lock refuses, before resolving anything, an upload
// that climbs out of its root, a base image off the lookup allowlist
// (nothing connects to it), a spec whose pip needs the caller's secrets,
// a requirements file sent without its content, a bad lock file, --check
// without a lock and --upgrade-package without Python pins; each with the
// status code the CLI maps to its exit code, and the message naming what
// is wrong. A spec without Python packages gets its base pinned.
func TestLockRefusals(t *testing.T) {
	off, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	env := testenv.Load(t)
	h := start(t, setup{lookups: []string{env.Registry}})
	c := rawClient(t, h)
	head := fmt.Sprintf("name: lock-%d\nregistry: %s/e2e\n", time.Now().UnixNano(), env.Registry)
	plain := head + "base_image: " + env.BaseBusybox + "\n"
	reqs := "ispec-lk-core\n"
	for _, tc := range []struct {
		name  string
		req   *apiv1.LockRequest
		code  codes.Code
		want  string
		field string // the SpecErrors detail's field, when set
	}{
		{name: "a path that climbs out of the upload", code: codes.InvalidArgument, want: "climbs out of the upload",
			req: &apiv1.LockRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain + "requirements: reqs.txt\n"),
				Files: []*apiv1.File{regular("reqs.txt", reqs), regular("../outside.txt", "x\n")}}}},
		{name: "a requirements file through a symlink out of the upload", code: codes.InvalidArgument, want: "leads outside",
			req: &apiv1.LockRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain + "requirements: reqs.txt\n"),
				Files: []*apiv1.File{link("reqs.txt", "/etc/passwd")}}}},
		{name: "a base image off the allowlist", code: codes.PermissionDenied, want: "does not pull base images from " + off.Addr().String(),
			req: &apiv1.LockRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(head + "base_image: " + off.Addr().String() + "/e2e/base:1\n")}}},
		{name: "an image registry off the allowlist", code: codes.PermissionDenied, want: "does not look up images in " + off.Addr().String(),
			req: &apiv1.LockRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(fmt.Sprintf("name: lock\nregistry: %s/e2e\nbase_image: %s\n", off.Addr(), env.BaseBusybox))}}},
		{name: "the caller's pip secrets", code: codes.InvalidArgument, field: "pip_secret_mounts", want: "never a caller's secrets",
			req: &apiv1.LockRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain + "packages: [ispec-lk-core]\npip_secret_mounts: [[pip.conf, /etc/pip.conf]]\n"),
				Files: []*apiv1.File{{Path: "pip.conf", Kind: apiv1.FileKind_FILE_KIND_REGULAR, Mode: 0o600, Content: []byte("[global]\nindex-url = http://user:pw@pypi.lan/simple\n"), Size: 48}}}}},
		{name: "a requirements file without its content", code: codes.InvalidArgument, want: "reqs.txt: a requirements file must be sent with its content",
			req: &apiv1.LockRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain + "requirements: reqs.txt\n"),
				Files: []*apiv1.File{{Path: "reqs.txt", Kind: apiv1.FileKind_FILE_KIND_REGULAR, Mode: 0o644, Size: int64(len(reqs)), Digest: sha([]byte(reqs))}}}}},
		{name: "a lock file that is not one", code: codes.InvalidArgument, want: "not a valid lock file",
			req: &apiv1.LockRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain), Files: []*apiv1.File{regular("spec.yaml.lock", "{nope")}}}},
		{name: "--check without a lock file", code: codes.InvalidArgument, want: "no lock file to check",
			req: &apiv1.LockRequest{Check: true, Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain)}}},
		{name: "--upgrade-package without Python packages", code: codes.InvalidArgument, want: "the spec has no Python packages",
			req: &apiv1.LockRequest{UpgradePackages: []string{"numpy"}, Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain)}}},
		{name: "--pylock without Python packages", code: codes.InvalidArgument, want: "the spec has no Python packages",
			req: &apiv1.LockRequest{Pylock: true, Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			defer cancel()
			_, err := c.Lock(ctx, tc.req)
			st := status.Convert(err)
			all := st.Message()
			var field bool
			for _, d := range st.Details() {
				if se, ok := d.(*apiv1.SpecErrors); ok {
					for _, e := range se.GetErrors() {
						all += "\n" + e.GetFile() + ": " + e.GetMessage()
						field = field || e.GetField() == tc.field
					}
				}
			}
			if st.Code() != tc.code || !strings.Contains(all, tc.want) {
				t.Fatalf("Lock: %v, want %s saying %q", err, tc.code, tc.want)
			}
			if tc.field != "" && !field {
				t.Errorf("Lock: %v, want a spec error of field %s", err, tc.field)
			}
			if strings.Contains(all, "user:pw") {
				t.Errorf("the answer repeats the caller's secret: %s", all)
			}
		})
	}
	// Nothing reached the address off the allowlist.
	off.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if conn, err := off.Accept(); err == nil {
		conn.Close()
		t.Error("the server connected to an address off the allowlist")
	}

	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	res, err := c.Lock(ctx, &apiv1.LockRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain)}})
	if err != nil {
		t.Fatalf("Lock of a spec without Python packages: %v", err)
	}
	l, err := spec.ParseLock("spec.yaml.lock", res.GetLock())
	if err != nil || l.BaseImage == nil || l.BaseImage.Platforms["linux/amd64"] == "" || l.Python != nil {
		t.Errorf("lock %s (%v): want the base pinned for linux/amd64 and no Python section", res.GetLock(), err)
	}
	if got := strings.Join(res.GetPlatforms(), ","); got != "linux/amd64" {
		t.Errorf("platforms %q, want linux/amd64", got)
	}
	res, err = c.Lock(ctx, &apiv1.LockRequest{Check: true, Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte(plain), Files: []*apiv1.File{regular("spec.yaml.lock", string(res.GetLock()))}}})
	if err != nil || len(res.GetDrift()) != 0 || len(res.GetLock()) != 0 {
		t.Errorf("Lock --check of the fresh lock: %v, %v; want no drift and no lock", res, err)
	}
}
