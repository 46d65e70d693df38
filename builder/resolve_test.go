package builder

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/protobuf/proto"
)

// TestResolveGraph: the resolution runs pip's dry run with a report on
// the base and the venv, with the spec's index, packages and requirements
// (mounted as for a build) and the constraints the graph holds; its
// result is the report folder alone.
func TestResolveGraph(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\npip_index: http://127.0.0.1:8080/simple\npackages: [\"ispec-demo-c\"]\nrequirements: reqs.txt\n",
		map[string]string{"reqs.txt": "ispec-demo-b\n"})
	st, err := ResolveGraph(img, Input{Platform: amd64, Base: testBase}, []byte("ispec-demo-a==1.0.0\n"))
	if err != nil {
		t.Fatal(err)
	}
	def, err := st.Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var run *pb.ExecOp
	var output int64 = -1
	ignored := false
	ops := map[digest.Digest]*pb.Op{}
	for _, dt := range def.Def {
		var o pb.Op
		if err := proto.Unmarshal(dt, &o); err != nil {
			t.Fatal(err)
		}
		ops[digest.FromBytes(dt)] = &o
		if e := o.GetExec(); e != nil && slices.Contains(e.Meta.Args, "--dry-run") {
			run = e
			ignored = def.Metadata[digest.FromBytes(dt)].IgnoreCache
		}
	}
	if run == nil {
		t.Fatal("no resolve step")
	}
	args := strings.Join(run.Meta.Args, " ")
	for _, w := range []string{"-m pip install --no-compile --index-url http://127.0.0.1:8080/simple --dry-run --ignore-installed --quiet --report " + reportDir + "/" + reportFile,
		"ispec-demo-c", "-r " + requirementsDir + "/reqs.txt", "-c " + constraintsFile} {
		if !strings.Contains(args, w) {
			t.Errorf("resolve args %q lack %q", args, w)
		}
	}
	if !ignored {
		t.Error("the resolve step may come from BuildKit's cache")
	}
	for _, m := range run.Mounts {
		if m.Dest == reportDir {
			output = m.Output
		}
	}
	if output < 0 {
		t.Error("the report folder is not an output mount of the resolve step")
	}
}

func TestParseReport(t *testing.T) {
	h := strings.Repeat("ab", 32)
	pins, err := ParseReport([]byte(`{"version":"1","install":[
		{"download_info":{"url":"http://i/files/B_x-2.0-py3-none-any.whl","archive_info":{"hash":"sha256=` + h + `"}},"metadata":{"name":"B_x","version":"2.0"}},
		{"download_info":{"url":"http://i/files/a-1.0-py3-none-any.whl","archive_info":{"hashes":{"sha256":"` + h + `"}}},"metadata":{"name":"a","version":"1.0"}}]}`))
	if err != nil || len(pins) != 2 || pins[0].Name != "a" || pins[1].Name != "b-x" || pins[1].File != "B_x-2.0-py3-none-any.whl" || pins[1].SHA256 != h {
		t.Fatalf("ParseReport = %+v, %v", pins, err)
	}
	_, err = ParseReport([]byte(`{"version":"1","install":[{"download_info":{"url":"http://i/a-1.0.tar.gz","archive_info":{}},"metadata":{"name":"a","version":"1.0"}}]}`))
	if !errors.Is(err, ErrNoHash) || !strings.Contains(err.Error(), "a 1.0") {
		t.Errorf("no hash: %v", err)
	}
	_, err = ParseReport([]byte(`{"version":"1","install":[{"download_info":{"url":"git+https://g/a","vcs_info":{}},"metadata":{"name":"a","version":"1.0"}}]}`))
	if err == nil || !strings.Contains(err.Error(), "cannot be pinned by hash") {
		t.Errorf("vcs: %v", err)
	}
}
