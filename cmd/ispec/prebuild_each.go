package main

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// each runs build for every spec not yet done, jobs at a time. A spec's
// failure does not stop the others; after an interrupt no spec starts
// (each is recorded as interrupted).
func (r *buildRun) each(jobs int, build func(i int)) {
	var g errgroup.Group
	g.SetLimit(jobs)
	for i := range r.paths {
		r.mu.Lock()
		done := r.done[i]
		r.mu.Unlock()
		if done {
			continue
		}
		g.Go(func() error {
			if r.ctx.Err() != nil {
				r.failed(i, context.Cause(r.ctx), 0)
				return nil
			}
			build(i)
			return nil
		})
	}
	g.Wait()
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
