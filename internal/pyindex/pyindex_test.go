package pyindex

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestWheelIsValid(t *testing.T) {
	dir := t.TempDir()
	p, err := Write(dir, Wheel{Name: "Ispec.Demo_X", Version: "1.2.3", RequiresDist: []string{"ispec-demo-a>=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "ispec_demo_x-1.2.3-py3-none-any.whl"; !strings.HasSuffix(p, "/"+want) {
		t.Fatalf("path %s, want file %s", p, want)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("not a zip: %v", err)
	}
	contents := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		contents[f.Name] = b
	}
	di := "ispec_demo_x-1.2.3.dist-info/"
	for _, need := range []string{"ispec_demo_x/__init__.py", "ispec_demo_x/__main__.py", di + "METADATA", di + "WHEEL", di + "RECORD"} {
		if _, ok := contents[need]; !ok {
			t.Errorf("wheel lacks %s", need)
		}
	}
	meta := string(contents[di+"METADATA"])
	for _, want := range []string{"Metadata-Version: 2.1\n", "Name: Ispec.Demo_X\n", "Version: 1.2.3\n", "Requires-Dist: ispec-demo-a>=1\n"} {
		if !strings.Contains(meta, want) {
			t.Errorf("METADATA lacks %q:\n%s", want, meta)
		}
	}
	wheel := string(contents[di+"WHEEL"])
	for _, want := range []string{"Wheel-Version: 1.0\n", "Root-Is-Purelib: true\n", "Tag: py3-none-any\n"} {
		if !strings.Contains(wheel, want) {
			t.Errorf("WHEEL lacks %q:\n%s", want, wheel)
		}
	}

	// Every file but RECORD is in RECORD with a matching hash and size.
	lines := strings.Split(strings.TrimSuffix(string(contents[di+"RECORD"]), "\n"), "\n")
	seen := map[string]bool{}
	hashRE := regexp.MustCompile(`^sha256=[A-Za-z0-9_-]{43}$`)
	for _, l := range lines {
		parts := strings.Split(l, ",")
		if len(parts) != 3 {
			t.Fatalf("RECORD line %q: want 3 fields", l)
		}
		seen[parts[0]] = true
		if parts[0] == di+"RECORD" {
			if parts[1] != "" || parts[2] != "" {
				t.Errorf("RECORD's own line %q must have empty hash and size", l)
			}
			continue
		}
		body, ok := contents[parts[0]]
		if !ok {
			t.Errorf("RECORD names %s, not in wheel", parts[0])
			continue
		}
		if !hashRE.MatchString(parts[1]) {
			t.Errorf("RECORD hash %q is not urlsafe base64 without padding", parts[1])
		}
		if want := "sha256=" + RecordHash(body); parts[1] != want {
			t.Errorf("%s: RECORD hash %s, content hash %s", parts[0], parts[1], want)
		}
		if parts[2] != strconv.Itoa(len(body)) {
			t.Errorf("%s: RECORD size %s, content size %d", parts[0], parts[2], len(body))
		}
	}
	for name := range contents {
		if !seen[name] {
			t.Errorf("%s missing from RECORD", name)
		}
	}

	// Deterministic.
	again, err := Build(Wheel{Name: "Ispec.Demo_X", Version: "1.2.3", RequiresDist: []string{"ispec-demo-a>=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Error("building the same wheel twice gave different bytes")
	}
}

func TestWriteWheelCustomFiles(t *testing.T) {
	dir := t.TempDir()
	p, err := WriteWheel(dir, "mypkg", "0.1", map[string]string{"mypkg.py": "X = 1\n"})
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	got := strings.Join(names, " ")
	if want := "mypkg.py mypkg-0.1.dist-info/METADATA mypkg-0.1.dist-info/WHEEL mypkg-0.1.dist-info/RECORD"; got != want {
		t.Errorf("entries %q, want %q", got, want)
	}
}

func TestWriteWheelRejectsBadInput(t *testing.T) {
	for _, w := range []Wheel{
		{Name: "bad name", Version: "1"},
		{Name: "ok", Version: "1; rm -rf /"},
		{Name: "ok", Version: "1", Files: map[string]string{"../x.py": ""}},
	} {
		if _, err := Build(w); err == nil {
			t.Errorf("Build(%+v) succeeded, want error", w)
		}
	}
}

func get(t *testing.T, c *http.Client, url string, setAuth func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if setAuth != nil {
		setAuth(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestIndexListsWheelsWithHashes(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDemo(dir); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(dir))
	defer srv.Close()
	c := srv.Client()

	code, body := get(t, c, srv.URL+"/simple/", nil)
	if code != 200 {
		t.Fatalf("root: %d", code)
	}
	for _, p := range []string{"ispec-demo-a/", "ispec-demo-b/", "ispec-demo-c/"} {
		if !strings.Contains(body, `href="`+p+`"`) {
			t.Errorf("root lacks link %s:\n%s", p, body)
		}
	}

	// A non-normalized name redirects to the normalized page (the client follows).
	code, body = get(t, c, srv.URL+"/simple/Ispec_Demo.A", nil)
	if code != 200 {
		t.Fatalf("project page: %d", code)
	}
	linkRE := regexp.MustCompile(`<a href="([^"#]+)#sha256=([0-9a-f]{64})">([^<]+)</a>`)
	links := linkRE.FindAllStringSubmatch(body, -1)
	if len(links) != 2 {
		t.Fatalf("want 2 links for ispec-demo-a, got %d:\n%s", len(links), body)
	}
	for _, l := range links {
		// The page is /simple/ispec-demo-a/, so ../../files/x is /files/x.
		if !strings.HasPrefix(l[1], "../../files/") {
			t.Fatalf("unexpected href %s", l[1])
		}
		code, whl := get(t, c, srv.URL+"/files/"+strings.TrimPrefix(l[1], "../../files/"), nil)
		if code != 200 {
			t.Fatalf("download %s: %d", l[1], code)
		}
		sum := sha256.Sum256([]byte(whl))
		if hex.EncodeToString(sum[:]) != l[2] {
			t.Errorf("%s: fragment sha256 %s does not match the file", l[3], l[2])
		}
	}

	if code, _ := get(t, c, srv.URL+"/simple/nope/", nil); code != 404 {
		t.Errorf("unknown project: %d, want 404", code)
	}
	if code, _ := get(t, c, srv.URL+"/files/..%2fetc%2fpasswd", nil); code != 404 {
		t.Errorf("path traversal: %d, want 404", code)
	}

	// Wheels added later are served without restarting.
	if _, err := WriteWheel(dir, "late-pkg", "3.0", nil); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, c, srv.URL+"/simple/late-pkg/", nil); code != 200 || !strings.Contains(body, "late_pkg-3.0-py3-none-any.whl#sha256=") {
		t.Errorf("late wheel: %d\n%s", code, body)
	}
}

func TestIndexBasicAuth(t *testing.T) {
	dir := t.TempDir()
	if err := WriteDemo(dir); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	srv := httptest.NewServer(Handler(dir, WithBasicAuth("alice", "s3cret"), WithLog(&log)))
	defer srv.Close()
	c := srv.Client()

	code, _ := get(t, c, srv.URL+"/simple/ispec-demo-b/", nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("no credentials: %d, want 401", code)
	}
	code, _ = get(t, c, srv.URL+"/simple/ispec-demo-b/", func(r *http.Request) { r.SetBasicAuth("alice", "wrong") })
	if code != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", code)
	}
	code, body := get(t, c, srv.URL+"/simple/ispec-demo-b/", func(r *http.Request) { r.SetBasicAuth("alice", "s3cret") })
	if code != 200 || !strings.Contains(body, "ispec_demo_b-2.0.0-py3-none-any.whl") {
		t.Fatalf("with credentials: %d\n%s", code, body)
	}
	if !strings.Contains(log.String(), "GET /simple/ispec-demo-b/ 401") || !strings.Contains(log.String(), "GET /simple/ispec-demo-b/ 200") {
		t.Errorf("log lacks request lines:\n%s", log.String())
	}
}

func TestHeavyFilesAreStableAndIncompressible(t *testing.T) {
	const size = 1<<20 + 3
	a, b := HeavyFiles("ispec-heavy", "1.0", size, 3), HeavyFiles("ispec-heavy", "1.0", size, 3)
	total := 0
	for p, body := range a {
		if b[p] != body {
			t.Errorf("%s differs between two calls", p)
		}
		if strings.HasSuffix(p, ".bin") {
			total += len(body)
		}
	}
	if total != size || len(a) != 4 || a["ispec_heavy/__init__.py"] != "__version__ = \"1.0\"\n" {
		t.Errorf("%d files holding %d bytes, want 4 holding %d", len(a), total, size)
	}
	data, err := Build(Wheel{Name: "ispec-heavy", Version: "1.0", Files: a})
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < size {
		t.Errorf("the wheel is %d bytes for a %d-byte payload: it compressed", len(data), size)
	}
	if Payload(64, "x") == Payload(64, "y") {
		t.Error("two seeds gave the same payload")
	}
}
