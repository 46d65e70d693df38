package cache

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func testHash(i int) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%064x", i)}
}

func testTag(t testing.TB, s string) name.Tag {
	t.Helper()
	ref, err := name.NewTag(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestIndex(t *testing.T) {
	dir := t.TempDir()
	idx, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := testTag(t, "ubuntu:24.04")
	if _, ok, err := idx.Get(ref); err != nil || ok {
		t.Fatalf("Get on empty index = %v, %v, want a miss", ok, err)
	}
	before := time.Now().Add(-time.Second)
	if err := idx.Put(ref, testHash(1), types.OCIManifestSchema1); err != nil {
		t.Fatal(err)
	}
	// The key is the normalized reference.
	e, ok, err := idx.Get(testTag(t, "index.docker.io/library/ubuntu:24.04"))
	if err != nil || !ok {
		t.Fatalf("Get after Put = %v, %v, want a hit", ok, err)
	}
	if e.Ref != "index.docker.io/library/ubuntu:24.04" || e.Digest != testHash(1) || e.MediaType != types.OCIManifestSchema1 || e.Recorded.Before(before) {
		t.Errorf("entry = %+v", e)
	}
	// Reopening sees the entry.
	idx2, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := idx2.Get(ref); !ok {
		t.Error("a second Index on the same directory misses the entry")
	}
	if err := idx.Delete(ref); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := idx2.Get(ref); ok {
		t.Error("entry still there after Delete")
	}
	if err := idx.Delete(ref); err != nil {
		t.Errorf("deleting a missing entry: %v", err)
	}
	if err := idx.Put(ref, v1.Hash{}, ""); err == nil {
		t.Error("Put with an empty digest succeeded")
	}
	if _, err := OpenIndex(""); err == nil {
		t.Error("OpenIndex(\"\") succeeded")
	}
}

func TestIndexConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	const writers, each = 8, 16
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer has its own Index, as separate processes would.
			idx, err := OpenIndex(dir)
			if err != nil {
				errs <- err
				return
			}
			for i := range each {
				ref := testTag(t, fmt.Sprintf("registry.example/w%d:t%d", w, i))
				if err := idx.Put(ref, testHash(w*1000+i), ""); err != nil {
					errs <- err
				}
				if _, ok, err := idx.Get(ref); err != nil || !ok {
					errs <- fmt.Errorf("reading back %s: %v %v", ref, ok, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkAll(t, dir, "registry.example/w%d:t%d", writers, each)
}

// checkAll checks that every writer's every entry is in the index in dir.
func checkAll(t *testing.T, dir, format string, writers, each int) {
	t.Helper()
	idx, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	missing := 0
	for w := range writers {
		for i := range each {
			e, ok, err := idx.Get(testTag(t, fmt.Sprintf(format, w, i)))
			if err != nil || !ok || e.Digest != testHash(w*1000+i) {
				missing++
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d entries lost", missing, writers*each)
	}
}

// TestIndexTwoProcesses runs writers in separate processes (this test binary
// re-executed) against one index.
func TestIndexTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	const procs, each = 2, 40
	var cmds []*exec.Cmd
	for w := range procs {
		cmd := helperCommand(t, "index-writer", dir, strconv.Itoa(w), strconv.Itoa(each))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer process: %v\n%s", err, cmd.Stderr)
		}
	}
	checkAll(t, dir, "registry.example/p%d:t%d", procs, each)
}

// helperCommand re-executes this test binary as a helper process.
func helperCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ISPEC_CACHE_TEST_HELPER="+strings.Join(args, "\x1f"))
	cmd.Stderr = &strings.Builder{}
	return cmd
}

// TestHelperProcess is not a test: it is the body of helper processes.
func TestHelperProcess(t *testing.T) {
	spec := os.Getenv("ISPEC_CACHE_TEST_HELPER")
	if spec == "" {
		t.Skip("helper process only")
	}
	args := strings.Split(spec, "\x1f")
	switch args[0] {
	case "index-writer":
		w, _ := strconv.Atoi(args[2])
		each, _ := strconv.Atoi(args[3])
		idx, err := OpenIndex(args[1])
		if err != nil {
			fail(err)
		}
		for i := range each {
			if err := idx.Put(testTag(t, fmt.Sprintf("registry.example/p%d:t%d", w, i)), testHash(w*1000+i), ""); err != nil {
				fail(err)
			}
		}
	case "lock-holder":
		// Take the lock, say so, hold it until stdin closes.
		unlock, err := LockTag(context.Background(), args[1], args[2])
		if err != nil {
			fail(err)
		}
		fmt.Println("locked")
		buf := make([]byte, 1)
		os.Stdin.Read(buf)
		if err := unlock(); err != nil {
			fail(err)
		}
	default:
		fail(fmt.Errorf("unknown helper %q", args[0]))
	}
	os.Exit(0)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// TestIndexStartsAfreshWhenUnreadable: an index file that a power cut
// left unreadable (writes are not synced) fails reads, which fall back to
// the registry, and the next write starts a new index; answers in it are
// then found again.
func TestIndexStartsAfreshWhenUnreadable(t *testing.T) {
	for name, garbage := range map[string][]byte{
		"zeros":      make([]byte, 16<<10),
		"text":       []byte(strings.Repeat("not a bolt database\n", 1000)),
		"truncated":  nil, // filled below: the first page of a real index
		"one random": {0xde, 0xad, 0xbe, 0xef},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			idx, err := OpenIndex(dir)
			if err != nil {
				t.Fatal(err)
			}
			ref := testTag(t, "registry.example/app:t1")
			if garbage == nil {
				if err := idx.Put(testTag(t, "registry.example/app:t0"), testHash(0), ""); err != nil {
					t.Fatal(err)
				}
				dt, err := os.ReadFile(idx.Path())
				if err != nil {
					t.Fatal(err)
				}
				garbage = dt[:1024]
			}
			if err := os.WriteFile(idx.Path(), garbage, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := idx.Get(ref); err == nil || ok {
				t.Errorf("Get on an unreadable index: found %v, err %v; want an error", ok, err)
			}
			if err := idx.Put(ref, testHash(1), ""); err != nil {
				t.Fatalf("Put on an unreadable index: %v", err)
			}
			e, ok, err := idx.Get(ref)
			if err != nil || !ok || e.Digest != testHash(1) {
				t.Errorf("after Put: %+v %v %v", e, ok, err)
			}
		})
	}
}
