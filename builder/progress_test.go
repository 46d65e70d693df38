package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"

	"github.com/ispec-dev/ispec/builder/progress"
)

func solveStatus(name string, d digest.Digest, log string) *client.SolveStatus {
	s := &client.SolveStatus{Vertexes: []*client.Vertex{{Digest: d, Name: name}}}
	if log != "" {
		s.Logs = []*client.VertexLog{{Vertex: d, Data: []byte(log)}}
	}
	return s
}

func collect(ch <-chan *progress.Status) []string {
	var out []string
	for s := range ch {
		out = append(out, s.Vertexes[0].Name)
	}
	return out
}

func TestProgressReplaysToEveryWatcher(t *testing.T) {
	p := NewProgress()
	ctx := context.Background()
	early := p.Subscribe(ctx)
	var wg sync.WaitGroup
	var got1 []string
	wg.Add(1)
	go func() { defer wg.Done(); got1 = collect(early) }()

	p.Publish(solveStatus("a", "sha256:a", ""))
	p.Publish(solveStatus("b", "sha256:b", ""))
	late := p.Subscribe(ctx)
	p.Publish(solveStatus("c", "sha256:c", ""))
	p.Close()
	p.Publish(solveStatus("after close", "sha256:d", ""))

	got2 := collect(late)
	wg.Wait()
	afterEnd := collect(p.Subscribe(ctx))
	want := "a b c"
	for name, got := range map[string][]string{"early": got1, "late": got2, "after end": afterEnd} {
		if strings.Join(got, " ") != want {
			t.Errorf("%s watcher saw %q, want %q", name, got, want)
		}
	}
}

func TestProgressWatcherCancel(t *testing.T) {
	p := NewProgress()
	ctx, cancel := context.WithCancel(context.Background())
	ch := p.Subscribe(ctx)
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed after cancel")
	}
	p.Close()
}

func TestDisplayModes(t *testing.T) {
	for _, mode := range []string{ModePlain, ModeRawJSON, "json", ModeQuiet, ModeAuto} {
		t.Run(mode, func(t *testing.T) {
			p := NewProgress()
			now := time.Now()
			p.Publish(&client.SolveStatus{Vertexes: []*client.Vertex{{Digest: "sha256:a", Name: "[ispec] step", Started: &now, Completed: &now}}})
			p.Close()
			var buf bytes.Buffer
			if err := Display(context.Background(), mode, &buf, p.Subscribe(context.Background())); err != nil {
				t.Fatal(err)
			}
			if mode != ModeQuiet && !strings.Contains(buf.String(), "step") {
				t.Errorf("output %q does not show the step", buf.String())
			}
			if mode == ModeQuiet && buf.Len() != 0 {
				t.Errorf("quiet wrote %q", buf.String())
			}
		})
	}
	if err := Display(context.Background(), ModeTTY, &bytes.Buffer{}, make(chan *progress.Status)); err == nil {
		t.Error("tty mode on a buffer should fail")
	}
}

func TestTrackerStepError(t *testing.T) {
	tr := newTracker()
	tr.add(solveStatus("[ispec] apt-get install jq", "sha256:a", "ok\n"))
	var log strings.Builder
	for i := 0; i < 30; i++ {
		log.WriteString("line ")
		log.WriteString(string(rune('a' + i%26)))
		log.WriteString("\n")
	}
	tr.add(solveStatus("[ispec] commands[0] exit 3", "sha256:b", log.String()[:50]))
	tr.add(solveStatus("", "sha256:b", log.String()[50:]+"partial"))
	tr.add(&client.SolveStatus{Vertexes: []*client.Vertex{
		{Digest: "sha256:b", Name: "[ispec] commands[0] exit 3", Error: "process did not complete successfully: exit code: 3"},
		{Digest: "sha256:a", Name: "[ispec] apt-get install jq", Error: "context canceled"},
	}})
	v := tr.failed()
	if v == nil || v.name != "[ispec] commands[0] exit 3" {
		t.Fatalf("failed vertex = %+v", v)
	}
	tail := v.tail()
	if len(tail) != LogTailLines || tail[len(tail)-1] != "partial" || tail[len(tail)-2] != "line d" {
		t.Errorf("tail = %q", tail)
	}
	err := &StepError{Step: v.name, Log: tail, Err: errors.New("exit code: 3")}
	if !strings.Contains(err.Error(), "commands[0]") || !strings.Contains(err.Error(), "partial") {
		t.Errorf("error = %q", err)
	}
}

func TestTerminalOfFollowsUnwrap(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := terminalOf(unwrapper{unwrapper{f}}); got != f {
		t.Errorf("terminalOf(wrapped file) = %v, want the file", got)
	}
	if got := terminalOf(&bytes.Buffer{}); got != nil {
		t.Errorf("terminalOf(buffer) = %v, want nil", got)
	}
}

type unwrapper struct{ w io.Writer }

func (u unwrapper) Write(p []byte) (int, error) { return u.w.Write(p) }
func (u unwrapper) Unwrap() io.Writer           { return u.w }

func TestALateWatcherGetsTheLatestStateAndTheLogsTail(t *testing.T) {
	const limit = 64 << 10
	p := NewProgressLimit(limit)
	ctx := context.Background()
	a, b := digest.FromString("a"), digest.FromString("b")
	line := strings.Repeat("x", 1023) + "\n"
	total := 0
	for i := 0; i < 10<<10; i++ { // 10 MiB of logs, half on each step
		d := a
		if i%2 == 1 {
			d = b
		}
		s := &client.SolveStatus{
			Vertexes: []*client.Vertex{{Digest: d, Name: "step " + d.Encoded()[:4]}},
			Statuses: []*client.VertexStatus{{ID: "pull", Vertex: d, Current: int64(i)}},
			Logs:     []*client.VertexLog{{Vertex: d, Data: []byte(line)}},
		}
		if i == 10<<10-1 {
			s.Logs[0].Data = []byte("the last line\n")
		}
		total += len(s.Logs[0].Data)
		p.Publish(s)
	}
	now := time.Now()
	p.Publish(&client.SolveStatus{Vertexes: []*client.Vertex{{Digest: a, Name: "step a", Completed: &now}}})
	p.Close()
	var (
		logs     bytes.Buffer
		vertexes = map[digest.Digest]*progress.Vertex{}
		statuses = map[digest.Digest]int64{}
		n        int
	)
	for s := range p.Subscribe(ctx) {
		n++
		for _, v := range s.Vertexes {
			vertexes[v.Digest] = v
		}
		for _, st := range s.Statuses {
			statuses[st.Vertex] = st.Current
		}
		for _, l := range s.Logs {
			logs.Write(l.Data)
		}
	}
	if n > 300 {
		t.Errorf("a late watcher got %d statuses of 10241", n)
	}
	if vertexes[a] == nil || vertexes[a].Completed == nil || vertexes[b] == nil {
		t.Errorf("vertexes %v: want both steps, a completed", vertexes)
	}
	if statuses[a] != 10<<10-2 || statuses[b] != 10<<10-1 {
		t.Errorf("latest statuses %v", statuses)
	}
	kept := logs.Len()
	if kept > limit+256<<10+100 {
		t.Errorf("a late watcher got %d bytes of logs; limit %d (plus what was not folded yet)", kept, limit)
	}
	if !strings.HasSuffix(logs.String(), "the last line\n") {
		t.Error("the logs' tail is not kept")
	}
	if !strings.HasPrefix(logs.String(), "... ") || !strings.Contains(logs.String(), " bytes dropped\n") {
		t.Errorf("the logs do not start with how many bytes were dropped: %.60q", logs.String())
	}
}
