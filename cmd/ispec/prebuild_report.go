package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

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
