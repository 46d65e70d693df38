package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/spec"
)

// TestFloatingBuildRecordsResolved: the server's build of a spec whose
// Python packages float records what the image installed: the caller's
// result (through the Done event), the build's record in ListBuilds and
// the image's dev.ispec.python-resolved label name the same list.
func TestFloatingBuildRecordsResolved(t *testing.T) {
	h := start(t, setup{})
	dir := t.TempDir()
	text := fmt.Sprintf("name: srv-py-%d\nregistry: %s/e2e\nbase_image: %s\npip_index: %s\npackages: [\"ispec-demo-c\"]\n",
		time.Now().UnixNano(), h.env.Registry, h.env.BasePython, h.env.IndexURL)
	p := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := spec.Load(context.Background(), p, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.client(t).Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if err != nil {
		t.Fatal(err)
	}
	got := res.Python["linux/amd64"]
	if !slices.Contains(got, "ispec-demo-c==0.1.0") || !slices.ContainsFunc(got, func(d string) bool { return strings.HasPrefix(d, "ispec-demo-a==") }) {
		t.Fatalf("result's Python = %v; want ispec-demo-c 0.1.0 and the ispec-demo-a it needs", res.Python)
	}
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	list, err := apiv1.NewImageServiceClient(conn).ListBuilds(context.Background(), &apiv1.ListBuildsRequest{})
	if err != nil || len(list.GetBuilds()) != 1 {
		t.Fatalf("ListBuilds = %v, %v; want the one build", list, err)
	}
	rec := list.GetBuilds()[0].GetPythonResolved()
	if len(rec) != 1 || rec[0].GetPlatform() != "linux/amd64" || !slices.Equal(rec[0].GetDistributions(), got) {
		t.Errorf("the build's record = %v, want linux/amd64 %v", rec, got)
	}
	cfg, err := testenv.Pull(t, res.Pinned()).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if label := cfg.Config.Labels["dev.ispec.python-resolved"]; label != strings.Join(got, " ") {
		t.Errorf("label = %q, want %q", label, strings.Join(got, " "))
	}
}
