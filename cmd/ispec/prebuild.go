package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/spec"
)

// Outcomes of a spec in --json-out records and the summary: a joined
// build counts as built.
const (
	outcomeFound  = "found"
	outcomeBuilt  = "built"
	outcomeFailed = "failed"
)

// specRecord is one spec's record in the --json-out file.
type specRecord struct {
	Spec     string       `json:"spec"`
	Name     string       `json:"name,omitempty"`
	Ref      string       `json:"ref,omitempty"`
	Digest   string       `json:"digest,omitempty"`
	Outcome  string       `json:"outcome"`
	Duration float64      `json:"duration_seconds"`
	Error    *errorRecord `json:"error,omitempty"`
}

// summary counts a run's outcomes.
type summary struct {
	Specs    int     `json:"specs"`
	Found    int     `json:"found"`
	Built    int     `json:"built"`
	Failed   int     `json:"failed"`
	Duration float64 `json:"duration_seconds"`
	// BuildSeconds is the time the built specs took, added up.
	BuildSeconds float64 `json:"build_seconds"`
}

// resultsFile is the document --json-out writes.
type resultsFile struct {
	Results []specRecord `json:"results"`
	Summary summary      `json:"summary"`
}

// buildRun is one `ispec build` over one or more specs: it keeps each
// spec's outcome, prints stdout in the order the specs were given however
// the builds finish, and reports at the end.
type buildRun struct {
	ctx    context.Context
	f      buildFlags
	paths  []string
	imgs   []*spec.Image
	stdout io.Writer
	stderr io.Writer
	msgs   *messages
	// mode is the progress display (see progressMode).
	mode  string
	start time.Time

	mu      sync.Mutex
	records []specRecord
	codes   []int
	lines   []string // stdout of each spec, once it is done
	done    []bool
	next    int // the first spec whose stdout is not printed yet
}

func newBuildRun(ctx context.Context, f buildFlags, paths []string, imgs []*spec.Image, stdout, stderr io.Writer, msgs *messages) *buildRun {
	n := len(paths)
	r := &buildRun{
		ctx: ctx, f: f, paths: paths, imgs: imgs, stdout: stdout, stderr: stderr, msgs: msgs, mode: progressMode(f, len(paths)), start: time.Now(),
		records: make([]specRecord, n), codes: make([]int, n), lines: make([]string, n), done: make([]bool, n),
	}
	for i, p := range paths {
		r.records[i].Spec = p
		if imgs[i] != nil {
			r.records[i].Name = imgs[i].Spec.Name
			r.records[i].Ref = imgs[i].Identity.Ref
		}
	}
	return r
}

// failed records that spec i failed with err and reports it on stderr.
func (r *buildRun) failed(i int, err error, took time.Duration) {
	err = interruption(r.ctx, err)
	var ie *interruptedError
	if !errors.As(err, &ie) {
		// An interruption is said once, when the command ends.
		r.msgs.specError(r.paths[i], err)
	}
	code, _ := cliClass(err)
	if ie != nil {
		code = exitCode(ie)
	}
	line := ""
	if r.f.asJSON {
		res := buildResult{Spec: r.paths[i], Error: newErrorRecord(err)}
		res.Ref = r.records[i].Ref
		line = jsonLine(res)
	}
	r.finish(i, code, line, func(rec *specRecord) {
		rec.Outcome, rec.Error, rec.Duration = outcomeFailed, newErrorRecord(err), took.Seconds()
	})
}

// succeeded records spec i's result.
func (r *buildRun) succeeded(i int, res *ensure.Result) {
	line := res.Pinned() + "\n"
	switch {
	case r.f.imageArgs:
		line = ""
	case r.f.asJSON:
		line = jsonLine(newBuildResult(r.paths[i], res))
	}
	r.finish(i, exitOK, line, func(rec *specRecord) {
		rec.Ref, rec.Digest, rec.Duration = res.Ref.Name(), res.Digest.String(), res.Duration.Seconds()
		if res.Output != "" {
			rec.Ref = res.Ref.String()
		}
		rec.Outcome = outcomeBuilt
		if res.Outcome == ensure.OutcomeFound {
			rec.Outcome = outcomeFound
		}
	})
}

// finish stores spec i's outcome and prints every stdout line that is now
// in order.
func (r *buildRun) finish(i, code int, line string, set func(*specRecord)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set(&r.records[i])
	r.codes[i], r.lines[i], r.done[i] = code, line, true
	for r.next < len(r.done) && r.done[r.next] {
		io.WriteString(r.stdout, r.lines[r.next])
		r.next++
	}
}

func jsonLine(v any) string {
	dt, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(dt) + "\n"
}
