package builder

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/protobuf/proto"
)

// TestInstalledGraph: the listing runs the venv's interpreter, isolated
// and as root, with a fixed program on the finished filesystem, and its
// result is a folder of its own, not the image.
func TestInstalledGraph(t *testing.T) {
	st := llb.Image(testBase).Run(llb.Args([]string{"true"})).Root()
	def, err := InstalledGraph(st).Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var run *pb.ExecOp
	for _, dt := range def.Def {
		var o pb.Op
		if err := proto.Unmarshal(dt, &o); err != nil {
			t.Fatal(err)
		}
		if e := o.GetExec(); e != nil && slices.Contains(e.Meta.Args, installedScript) {
			run = e
			if name := def.Metadata[digest.FromBytes(dt)].Description["llb.customname"]; name != InstalledStepName {
				t.Errorf("step name %q", name)
			}
		}
	}
	if run == nil {
		t.Fatal("no listing step")
	}
	want := []string{VenvDir + "/bin/python", "-I", "-c", installedScript, installedDir + "/" + installedFile}
	if !slices.Equal(run.Meta.Args, want) {
		t.Errorf("args %q, want %q", run.Meta.Args, want)
	}
	if run.Meta.User != "0:0" {
		t.Errorf("user %q, want root", run.Meta.User)
	}
	out := false
	for _, m := range run.Mounts {
		if m.Dest == installedDir && m.Output >= 0 && m.Input < 0 {
			out = true
		}
	}
	if !out {
		t.Error("the listing is not written to an empty output mount of its own")
	}
}

func TestParseInstalled(t *testing.T) {
	got, err := ParseInstalled([]byte(`["scipy==1.0","pillow==2.0","pip==24.0"]`))
	if err != nil || strings.Join(got, " ") != "pillow==2.0 pip==24.0 scipy==1.0" {
		t.Fatalf("ParseInstalled = %v, %v", got, err)
	}
	if got, err := ParseInstalled([]byte(`[]`)); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty list = %#v, %v; want an empty, non-nil list", got, err)
	}
	for _, bad := range []string{`{}`, `["pillow"]`, `["a b==1"]`, `["==1"]`} {
		if _, err := ParseInstalled([]byte(bad)); err == nil {
			t.Errorf("ParseInstalled(%s) accepted", bad)
		}
	}
}

// TestRecordsInstalled: only a spec with a virtual environment and a
// floating requirement lists what it installed.
func TestRecordsInstalled(t *testing.T) {
	for doc, want := range map[string]bool{
		"name: x\nbase_image: " + testBase + "\npackages: [\"ispec-demo-a\"]\n": true,
		"name: x\nbase_image: " + testBase + "\npython_version: \"3.11\"\n":     false,
		"name: x\nbase_image: " + testBase + "\napt_packages: [curl]\n":         false,
	} {
		if got := RecordsInstalled(loadSpec(t, doc, nil)); got != want {
			t.Errorf("%q: RecordsInstalled = %v, want %v", doc, got, want)
		}
	}
}

// TestConfigPythonResolved: the list becomes the label; without one a
// spec's own label of that name is dropped.
func TestConfigPythonResolved(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\npackages: [\"ispec-demo-a\"]\nlabels: {"+LabelPythonResolved+": forged}\n", nil)
	in := Input{Platform: amd64, Base: testBase}
	cfg, err := Config(img, in, ConfigInput{PythonResolved: []string{"ispec-demo-a==1.0", "pip==24.0"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Config.Labels[LabelPythonResolved]; got != "ispec-demo-a==1.0 pip==24.0" {
		t.Errorf("label = %q", got)
	}
	cfg, err = Config(img, in, ConfigInput{})
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := cfg.Config.Labels[LabelPythonResolved]; ok {
		t.Errorf("label without a list = %q", v)
	}
}
