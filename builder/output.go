package builder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/buildkit/client"

	"github.com/ispec-dev/ispec/internal/atomicfile"
)

// OutputType is the format of a local output.
type OutputType string

// The local outputs BuildKit can write.
const (
	// OutputOCI is an OCI image layout, as a tarball.
	OutputOCI OutputType = "oci"
	// OutputDocker is a tarball `docker load` accepts.
	OutputDocker OutputType = "docker"
)

// Output is a local file an image is written to instead of being pushed.
// The file appears only when the build succeeds: it is written to a
// temporary file in the same folder and renamed into place.
type Output struct {
	// Type is the file's format.
	Type OutputType
	// Path is the file to write; it is replaced when it exists.
	Path string
}

// IsFolder reports whether the output names a folder to hold one file per
// image: its path ends with a slash (oci:DIR/). A path to an existing
// folder without one is an error (Check), not a folder output, so that a
// typo never scatters files.
func (o *Output) IsFolder() bool {
	return strings.HasSuffix(o.Path, "/") || strings.HasSuffix(o.Path, string(filepath.Separator))
}

// For returns the output of the spec named name whose tag is tag: o
// itself when it names a file; in a folder output, the file NAME_TAG.tar
// in it (slashes in the name become _).
func (o *Output) For(name, tag string) *Output {
	if !o.IsFolder() {
		return o
	}
	file := strings.ReplaceAll(name, "/", "_") + "_" + tag + ".tar"
	return &Output{Type: o.Type, Path: filepath.Join(o.Path, file)}
}

// String returns the output as ParseOutput reads it.
func (o *Output) String() string { return string(o.Type) + ":" + o.Path }

// ParseOutput reads "oci:PATH" or "docker:PATH".
func ParseOutput(s string) (*Output, error) {
	typ, path, ok := strings.Cut(s, ":")
	if !ok || path == "" {
		return nil, fmt.Errorf("output %q: expected oci:PATH or docker:PATH", s)
	}
	o := &Output{Type: OutputType(typ), Path: path}
	switch o.Type {
	case OutputOCI, OutputDocker:
	default:
		return nil, fmt.Errorf("output %q: unknown type %q; expected oci:PATH or docker:PATH", s, typ)
	}
	return o, nil
}

// Check reports whether the output can hold an image of n platforms: its
// folder must exist, its path must not be a folder, and a docker tarball
// holds one platform only.
func (o *Output) Check(n int) error {
	switch o.Type {
	case OutputOCI:
	case OutputDocker:
		if n > 1 {
			return fmt.Errorf("output %s: a docker tarball holds one platform, the spec has %d; use oci:PATH for an image index", o, n)
		}
	default:
		return fmt.Errorf("output %s: unknown type %q; expected oci or docker", o, o.Type)
	}
	if o.Path == "" {
		return fmt.Errorf("output %s: no path", o)
	}
	fi, err := os.Stat(filepath.Dir(o.Path))
	if err != nil {
		return fmt.Errorf("output %s: %w", o, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("output %s: %s is not a folder", o, filepath.Dir(o.Path))
	}
	if fi, err := os.Stat(o.Path); err == nil && fi.IsDir() {
		return fmt.Errorf("output %s: %s is a folder; give a file name", o, o.Path)
	}
	return nil
}

// outputFile is the temporary file BuildKit streams a tarball into.
type outputFile struct {
	out *Output

	mu sync.Mutex
	f  *atomicfile.File
}

// exportEntry returns BuildKit's exporter for a local output.
func (o *outputFile) exportEntry(ref string) client.ExportEntry {
	typ := client.ExporterOCI
	attrs := map[string]string{
		"name":              ref,
		"rewrite-timestamp": "true",
		"source-date-epoch": "0",
	}
	if o.out.Type == OutputDocker {
		typ = client.ExporterDocker
	} else {
		attrs["oci-mediatypes"] = "true"
	}
	return client.ExportEntry{Type: typ, Attrs: attrs, Output: o.open}
}

// open is the client.ExportEntry Output function: a new temporary file
// next to the output path.
func (o *outputFile) open(map[string]string) (io.WriteCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		return nil, errors.New("the output was opened twice")
	}
	f, err := atomicfile.Create(o.out.Path)
	if err != nil {
		return nil, fmt.Errorf("creating output %s: %w", o.out, err)
	}
	o.f = f
	return o, nil
}

// Write implements io.Writer.
func (o *outputFile) Write(p []byte) (int, error) { return o.f.Write(p) }

// Close syncs and closes the temporary file; the output is in place only
// after commit.
func (o *outputFile) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("writing output %s: %w", o.out, err)
	}
	return nil
}

// commit puts the finished temporary file at the output path (mode 0644).
func (o *outputFile) commit() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f == nil {
		return fmt.Errorf("output %s: buildkit wrote nothing", o.out)
	}
	if err := o.f.Commit(0o644); err != nil {
		return fmt.Errorf("output %s: %w", o.out, err)
	}
	return nil
}

// discard removes the temporary file of a failed build.
func (o *outputFile) discard() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		o.f.Discard()
	}
}
