package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	start  time.Time

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
		ctx: ctx, f: f, paths: paths, imgs: imgs, stdout: stdout, stderr: stderr, msgs: msgs, start: time.Now(),
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

// each runs build for every spec not yet done, jobs at a time. A spec's
// failure does not stop the others; an interrupt stops starting new ones.
func (r *buildRun) each(jobs int, build func(i int)) {
	todo := make(chan int)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range todo {
				build(i)
			}
		}()
	}
	var skipped []int
	for i := range r.paths {
		r.mu.Lock()
		done := r.done[i]
		r.mu.Unlock()
		switch {
		case done:
		case r.ctx.Err() != nil:
			skipped = append(skipped, i)
		default:
			select {
			case todo <- i:
			case <-r.ctx.Done():
				skipped = append(skipped, i)
			}
		}
	}
	close(todo)
	wg.Wait()
	for _, i := range skipped {
		r.failed(i, context.Cause(r.ctx), 0)
	}
}

// code is the command's exit code: the worst of the specs', where an
// invalid spec is worse than an unavailable registry or builder, which is
// worse than a failed build; an interruption ends it all.
func (r *buildRun) code() int {
	worst := exitOK
	for _, c := range r.codes {
		if c >= exitSignalBase {
			return c
		}
		if severity(c) > severity(worst) {
			worst = c
		}
	}
	return worst
}

// severity orders exit codes: 0 < 1 (failed) < 3 (unavailable) < 2 (invalid).
func severity(code int) int {
	switch code {
	case exitOK:
		return 0
	case exitFailed:
		return 1
	case exitUnavailable:
		return 2
	case exitInvalid:
		return 3
	}
	return 4
}

// summary counts the outcomes so far.
func (r *buildRun) summary() summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := summary{Specs: len(r.records), Duration: time.Since(r.start).Seconds()}
	for _, rec := range r.records {
		switch rec.Outcome {
		case outcomeFound:
			s.Found++
		case outcomeBuilt:
			s.Built++
			s.BuildSeconds += rec.Duration
		default:
			s.Failed++
		}
	}
	return s
}

// report ends the run: the --image-args lines, the --json-out file, the
// summary on stderr (for more than one spec) and in $GITHUB_STEP_SUMMARY,
// and the error the command exits with.
func (r *buildRun) report() error {
	s := r.summary()
	if r.f.imageArgs {
		r.printImageArgs()
	}
	var errs []error
	if r.f.jsonOut != "" {
		if err := writeFileAtomic(r.f.jsonOut, resultsFile{Results: r.records, Summary: s}); err != nil {
			errs = append(errs, fmt.Errorf("--json-out: %w", err))
		}
	}
	if len(r.paths) > 1 {
		r.printSummary(s)
	}
	if p := os.Getenv("GITHUB_STEP_SUMMARY"); p != "" {
		if err := appendFile(p, markdownSummary(r.records, s)); err != nil {
			r.msgs.warn("GITHUB_STEP_SUMMARY: %v", err)
		}
	}
	var ie *interruptedError
	if errors.As(context.Cause(r.ctx), &ie) {
		return ie
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c := r.code(); c != exitOK {
		return &exitError{code: c}
	}
	return nil
}

// printImageArgs prints the arguments of `pyflyte register` that name
// each spec's image: --image NAME=REF@DIGEST.
func (r *buildRun) printImageArgs() {
	first := map[string]specRecord{}
	for _, rec := range r.records {
		if rec.Outcome == outcomeFailed {
			continue
		}
		if prev, ok := first[rec.Name]; ok && prev.Ref+"@"+prev.Digest != rec.Ref+"@"+rec.Digest {
			r.msgs.warn("%s and %s are both named %q but are different images: pyflyte register keeps the last --image %s=, so tasks get %s; give the specs different names", prev.Spec, rec.Spec, rec.Name, rec.Name, rec.Spec)
		} else if !ok {
			first[rec.Name] = rec
		}
		if !isWord(rec.Name) {
			r.msgs.warn("%s: name %q is more than letters, digits and _: flytekit's {{.image.NAME}} placeholders will not find it", rec.Spec, rec.Name)
		}
		fmt.Fprintf(r.stdout, "--image %s=%s@%s\n", rec.Name, rec.Ref, rec.Digest)
	}
}

// isWord reports whether s is what flytekit's image placeholders
// ({{.image.NAME}}) match as a name: ASCII letters, digits and _.
func isWord(s string) bool {
	for _, c := range s {
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return s != ""
}

func (r *buildRun) printSummary(s summary) {
	text := fmt.Sprintf("summary: %d specs in %s: %d found, %d built", s.Specs, seconds(s.Duration), s.Found, s.Built)
	if s.Built > 0 {
		text += fmt.Sprintf(" (%s of builds)", seconds(s.BuildSeconds))
	}
	text += fmt.Sprintf(", %d failed", s.Failed)
	if r.msgs.json {
		r.msgs.print("summary", "", s)
		return
	}
	lines := []string{"ispec: " + text}
	for _, rec := range r.records {
		if rec.Outcome == outcomeFailed {
			lines = append(lines, fmt.Sprintf("ispec:   failed (%s): %s", rec.Error.Class, rec.Spec))
		}
	}
	r.msgs.print("summary", strings.Join(lines, "\n"), s)
}

// seconds formats a duration in seconds the way the summary shows it.
func seconds(s float64) string {
	return (time.Duration(s*10) * time.Second / 10).String()
}

// markdownSummary is the summary as a GitHub step summary: counts and a
// table of every spec.
func markdownSummary(records []specRecord, s summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### ispec build\n\n%d specs in %s: **%d found**, **%d built**, **%d failed**\n\n", s.Specs, seconds(s.Duration), s.Found, s.Built, s.Failed)
	b.WriteString("| spec | image | outcome | time |\n| --- | --- | --- | --- |\n")
	for _, rec := range records {
		img := ""
		if rec.Digest != "" {
			img = "`" + rec.Ref + "@" + rec.Digest + "`"
		} else if rec.Ref != "" {
			img = "`" + rec.Ref + "`"
		}
		outcome := rec.Outcome
		if rec.Error != nil {
			outcome = fmt.Sprintf("%s (%s): %s", rec.Outcome, rec.Error.Class, markdownCell(rec.Error.Message))
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", markdownCell(rec.Spec), img, outcome, seconds(rec.Duration))
	}
	b.WriteString("\n")
	return b.String()
}

// markdownCell makes s fit in one table cell: one line, no |, not too long.
func markdownCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// writeFileAtomic writes v as JSON to path through a temporary file in
// the same folder, renamed into place: a reader sees the old file or the
// whole new one, never part of it.
func writeFileAtomic(path string, v any) error {
	dt, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(dt, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// appendFile appends text to the file at path, making it if needed.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkJSONOut refuses, before any work, a --json-out whose folder does
// not exist or that names a folder.
func checkJSONOut(path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return usageError{fmt.Errorf("--json-out %s: folder %s does not exist", path, filepath.Dir(path))}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usageError{fmt.Errorf("--json-out %s is a folder: name a file", path)}
	}
	return nil
}
