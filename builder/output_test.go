package builder

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/buildkit/client"
)

func TestParseOutput(t *testing.T) {
	for in, want := range map[string]Output{
		"oci:out/img.tar":     {Type: OutputOCI, Path: "out/img.tar"},
		"docker:/tmp/img.tar": {Type: OutputDocker, Path: "/tmp/img.tar"},
		"oci:c:/x.tar":        {Type: OutputOCI, Path: "c:/x.tar"},
	} {
		got, err := ParseOutput(in)
		if err != nil || *got != want {
			t.Errorf("ParseOutput(%q) = %v, %v; want %v", in, got, err, want)
		}
		if got.String() != in {
			t.Errorf("String() = %q, want %q", got, in)
		}
	}
	for _, in := range []string{"", "oci", "oci:", "tar:x.tar", "registry:x"} {
		if _, err := ParseOutput(in); err == nil || !strings.Contains(err.Error(), "oci:PATH or docker:PATH") {
			t.Errorf("ParseOutput(%q) = %v; want an error saying what is expected", in, err)
		}
	}
}

func TestOutputCheck(t *testing.T) {
	dir := t.TempDir()
	if err := (&Output{Type: OutputOCI, Path: filepath.Join(dir, "a.tar")}).Check(2); err != nil {
		t.Errorf("oci, two platforms: %v", err)
	}
	for _, tc := range []struct {
		out  Output
		n    int
		want string
	}{
		{Output{Type: OutputDocker, Path: filepath.Join(dir, "a.tar")}, 2, "one platform"},
		{Output{Type: OutputOCI, Path: filepath.Join(dir, "missing", "a.tar")}, 1, "no such file"},
		{Output{Type: OutputOCI, Path: dir}, 1, "is a folder"},
	} {
		if err := tc.out.Check(tc.n); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%v, %d) = %v; want %q", tc.out, tc.n, err, tc.want)
		}
	}
}

func TestOutputExportEntry(t *testing.T) {
	for typ, want := range map[OutputType]string{OutputOCI: client.ExporterOCI, OutputDocker: client.ExporterDocker} {
		o := &outputFile{out: &Output{Type: typ, Path: "x.tar"}}
		e := o.exportEntry("reg/app:tag")
		if e.Type != want || e.Output == nil || e.Attrs["name"] != "reg/app:tag" || e.Attrs["rewrite-timestamp"] != "true" || e.Attrs["push"] != "" {
			t.Errorf("%s: export entry %+v", typ, e)
		}
	}
}

// TestOutputFileAtomic: the output path holds either the old file or the
// whole new one, never a partial write; a failed build leaves no file.
func TestOutputFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "img.tar")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &outputFile{out: &Output{Type: OutputOCI, Path: path}}
	w, err := o.open(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("new image")); err != nil {
		t.Fatal(err)
	}
	if dt, _ := os.ReadFile(path); string(dt) != "old" {
		t.Errorf("during the write the output holds %q", dt)
	}
	if _, err := o.open(nil); err == nil {
		t.Error("a second open succeeded")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.commit(); err != nil {
		t.Fatal(err)
	}
	dt, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if string(dt) != "new image" || fi.Mode().Perm() != 0o644 {
		t.Errorf("after commit: %q mode %v", dt, fi.Mode())
	}
	assertOnly(t, dir, "img.tar")

	// A failed build: the temporary file goes, nothing appears.
	path2 := filepath.Join(dir, "failed.tar")
	o = &outputFile{out: &Output{Type: OutputDocker, Path: path2}}
	w, err = o.open(nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half"))
	o.discard()
	assertOnly(t, dir, "img.tar")

	// BuildKit never asked for the file.
	o = &outputFile{out: &Output{Type: OutputOCI, Path: path2}}
	if err := o.commit(); err == nil {
		t.Error("commit without a write succeeded")
	}
	assertOnly(t, dir, "img.tar")
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("folder holds %q, want %q", got, names)
	}
}
