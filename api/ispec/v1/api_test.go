package ispecv1_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/durationpb"

	ispecv1 "github.com/ispec-dev/ispec/api/ispec/v1"
)

var update = flag.Bool("update", false, "add new fields and enum values to testdata/wire.txt")

const protoPath = "ispec/v1/ispec.proto"

func fileDesc(t *testing.T) protoreflect.FileDescriptor {
	t.Helper()
	fd, err := protoregistry.GlobalFiles.FindFileByPath(protoPath)
	if err != nil {
		t.Fatalf("%s is not registered: %v", protoPath, err)
	}
	return fd
}

// TestDescriptorRegistered checks that the generated code registers the
// file, its package, and the service with the methods and streaming kinds
// the server and clients rely on.
func TestDescriptorRegistered(t *testing.T) {
	fd := fileDesc(t)
	if fd.Package() != "ispec.v1" {
		t.Errorf("package = %q, want ispec.v1", fd.Package())
	}
	const goPkg = "github.com/ispec-dev/ispec/api/ispec/v1;ispecv1"
	if got := fd.Options().(*descriptorpb.FileOptions).GetGoPackage(); got != goPkg {
		t.Errorf("go_package = %q, want %q", got, goPkg)
	}
	svc := fd.Services().ByName("ImageService")
	if svc == nil {
		t.Fatal("service ImageService is not in the descriptor")
	}
	if svc.FullName() != protoreflect.FullName(ispecv1.ImageService_ServiceDesc.ServiceName) {
		t.Errorf("gRPC service name %q, descriptor %q", ispecv1.ImageService_ServiceDesc.ServiceName, svc.FullName())
	}
	want := map[string]bool{ // method -> server-streaming
		"Resolve":          false,
		"Lookup":           false,
		"Build":            true,
		"Watch":            true,
		"ListBuilds":       false,
		"FindMissingBlobs": false,
		"WriteBlob":        false,
		"Lock":             false,
	}
	clientStreaming := map[string]bool{"WriteBlob": true}
	ms := svc.Methods()
	if ms.Len() != len(want) {
		t.Errorf("ImageService has %d methods, want %d", ms.Len(), len(want))
	}
	for name, streaming := range want {
		m := ms.ByName(protoreflect.Name(name))
		if m == nil {
			t.Errorf("method %s is missing", name)
			continue
		}
		if m.IsStreamingClient() != clientStreaming[name] || m.IsStreamingServer() != streaming {
			t.Errorf("%s: client streaming %v, server streaming %v; want %v, %v", name, m.IsStreamingClient(), m.IsStreamingServer(), clientStreaming[name], streaming)
		}
	}
}

// TestEnumsHaveUnspecifiedZero checks every enum's zero value is
// <ENUM>_UNSPECIFIED and every value carries the enum's prefix, so that an
// unset field never reads as a meaningful answer.
func TestEnumsHaveUnspecifiedZero(t *testing.T) {
	fd := fileDesc(t)
	enums := fd.Enums()
	if enums.Len() == 0 {
		t.Fatal("no enums in the descriptor")
	}
	for i := range enums.Len() {
		e := enums.Get(i)
		prefix := screamingSnake(string(e.Name())) + "_"
		zero := e.Values().ByNumber(0)
		if zero == nil || string(zero.Name()) != prefix+"UNSPECIFIED" {
			t.Errorf("enum %s: zero value is %v, want %sUNSPECIFIED", e.Name(), zero, prefix)
		}
		for j := range e.Values().Len() {
			v := e.Values().Get(j)
			if !strings.HasPrefix(string(v.Name()), prefix) {
				t.Errorf("enum %s: value %s lacks the prefix %s", e.Name(), v.Name(), prefix)
			}
		}
	}
}

// TestFieldNamesSnakeCase checks that every field is lower snake_case and
// no field is named after a keyword of the languages that call the API.
func TestFieldNamesSnakeCase(t *testing.T) {
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	keywords := []string{
		// Python
		"and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
		"elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
		"is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
		"with", "yield", "none", "true", "false",
		// Go
		"chan", "default", "defer", "fallthrough", "func", "go", "goto", "interface", "map",
		"package", "range", "select", "struct", "switch", "type", "var",
	}
	forEachMessage(fileDesc(t).Messages(), func(m protoreflect.MessageDescriptor) {
		for i := range m.Fields().Len() {
			f := m.Fields().Get(i)
			name := string(f.Name())
			if !snake.MatchString(name) {
				t.Errorf("%s: field name %q is not snake_case", m.FullName(), name)
			}
			if slices.Contains(keywords, name) {
				t.Errorf("%s: field name %q is a keyword in Go or Python", m.FullName(), name)
			}
		}
		for i := range m.Oneofs().Len() {
			if o := m.Oneofs().Get(i); !snake.MatchString(string(o.Name())) {
				t.Errorf("%s: oneof name %q is not snake_case", m.FullName(), o.Name())
			}
		}
	})
}

// TestEveryDeclarationCommented checks the .proto: every service, rpc,
// message, enum, enum value, oneof and field has a comment just above it.
func TestEveryDeclarationCommented(t *testing.T) {
	f, err := os.Open("ispec.proto")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	decl := regexp.MustCompile(`^\s*(service|rpc|message|enum|oneof)\s+\w+|^\s*(repeated\s+)?[\w.]+\s+\w+\s*=\s*\d+;|^\s*[A-Z][A-Z0-9_]*\s*=\s*\d+;`)
	sc := bufio.NewScanner(f)
	prev, n, checked := "", 0, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if decl.MatchString(line) {
			checked++
			if !strings.HasPrefix(strings.TrimSpace(prev), "//") {
				t.Errorf("ispec.proto:%d: %q has no comment above it", n, strings.TrimSpace(line))
			}
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if checked < 100 {
		t.Errorf("checked only %d declarations: the pattern no longer matches the file", checked)
	}
}

// TestWireCompatible checks that every field and enum value recorded in
// testdata/wire.txt still exists with the same number, type and
// cardinality: v1 only ever grows. -update records new ones.
func TestWireCompatible(t *testing.T) {
	var current []string
	fd := fileDesc(t)
	forEachMessage(fd.Messages(), func(m protoreflect.MessageDescriptor) {
		for i := range m.Fields().Len() {
			current = append(current, wireLine(m.Fields().Get(i)))
		}
	})
	for i := range fd.Enums().Len() {
		e := fd.Enums().Get(i)
		for j := range e.Values().Len() {
			v := e.Values().Get(j)
			current = append(current, fmt.Sprintf("%s = %d", v.FullName(), v.Number()))
		}
	}
	for i := range fd.Services().Len() {
		s := fd.Services().Get(i)
		for j := range s.Methods().Len() {
			m := s.Methods().Get(j)
			current = append(current, fmt.Sprintf("%s(%s) returns (%s) server_streaming=%v", m.FullName(), m.Input().FullName(), m.Output().FullName(), m.IsStreamingServer()))
		}
	}
	slices.Sort(current)

	const golden = "testdata/wire.txt"
	data, err := os.ReadFile(golden)
	if err != nil && !*update {
		t.Fatalf("%v (run go test ./api/ispec/v1 -run TestWireCompatible -update)", err)
	}
	var recorded []string
	for l := range strings.Lines(string(data)) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			recorded = append(recorded, l)
		}
	}
	for _, l := range recorded {
		if !slices.Contains(current, l) {
			t.Errorf("%s: %q is gone or changed; ispec.v1 must stay wire compatible (add fields, never renumber, retype or remove them)", golden, l)
		}
	}
	if *update && !t.Failed() {
		out := "# Every field, enum value and method of ispec.v1 as released: TestWireCompatible\n# fails when one is removed or changed. Regenerate with -update (adds only).\n" + strings.Join(current, "\n") + "\n"
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, l := range current {
		if !slices.Contains(recorded, l) {
			t.Errorf("%s lacks %q: run go test ./api/ispec/v1 -run TestWireCompatible -update", golden, l)
		}
	}
}

// TestRoundTrip checks a build request and a done event survive the wire,
// oneofs included.
func TestRoundTrip(t *testing.T) {
	req := &ispecv1.BuildRequest{
		Input: &ispecv1.SpecInput{
			SpecPath: "imagespec.yaml",
			Spec:     []byte("python_version: \"3.12\"\n"),
			Files: []*ispecv1.File{
				{Path: "requirements.txt", Kind: ispecv1.FileKind_FILE_KIND_REGULAR, Mode: 0o644, Size: 5, Content: []byte("rich\n")},
				{Path: "src", Kind: ispecv1.FileKind_FILE_KIND_DIRECTORY, Mode: 0o755},
				{Path: "src/link", Kind: ispecv1.FileKind_FILE_KIND_SYMLINK, Mode: 0o777, Target: "../requirements.txt"},
			},
		},
		Options: &ispecv1.BuildOptions{NoCache: true, Progress: ispecv1.ProgressDetail_PROGRESS_DETAIL_STEPS},
	}
	ev := &ispecv1.BuildEvent{
		BuildId: "b1",
		Ref:     "127.0.0.1:5000/app:abc",
		Event: &ispecv1.BuildEvent_Done{Done: &ispecv1.Done{
			Ref: "127.0.0.1:5000/app:abc", Digest: "sha256:" + strings.Repeat("0", 64),
			Outcome: ispecv1.BuildOutcome_BUILD_OUTCOME_JOINED, Duration: durationpb.New(1500_000_000),
		}},
	}
	for _, m := range []proto.Message{req, ev} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(b, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(m, got) {
			t.Errorf("round trip changed %T:\n got %v\nwant %v", m, got, m)
		}
	}
	if d := ev.GetDone(); d == nil || ev.GetFailed() != nil {
		t.Errorf("oneof accessors: done %v, failed %v", d, ev.GetFailed())
	}
}

func forEachMessage(ms protoreflect.MessageDescriptors, fn func(protoreflect.MessageDescriptor)) {
	for i := range ms.Len() {
		m := ms.Get(i)
		fn(m)
		forEachMessage(m.Messages(), fn)
	}
}

func wireLine(f protoreflect.FieldDescriptor) string {
	typ := f.Kind().String()
	switch f.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		typ = string(f.Message().FullName())
	case protoreflect.EnumKind:
		typ = string(f.Enum().FullName())
	}
	card := f.Cardinality().String()
	if o := f.ContainingOneof(); o != nil && !o.IsSynthetic() {
		card = "oneof " + string(o.Name())
	}
	return fmt.Sprintf("%s = %d %s %s", f.FullName(), f.Number(), card, typ)
}

// screamingSnake turns "LookupState" into "LOOKUP_STATE".
func screamingSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}
