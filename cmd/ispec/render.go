package main

import (
	"context"
	"io"

	"github.com/ispec-dev/ispec/builder/progress"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
)

// renderer shows a call's events on stderr the way buildx does: BuildKit's
// progress in the chosen mode (tty, plain, json, quiet), and the pipeline's
// own news (waiting for another build) as a line of its own.
type renderer struct {
	ctx      context.Context
	msgs     *messages
	mode     string
	w        io.Writer
	ch       chan *progress.Status
	shown    chan struct{}
	waited   bool
	warnings []string
}

func newRenderer(ctx context.Context, mode string, w io.Writer, msgs *messages) *renderer {
	return &renderer{ctx: ctx, mode: mode, w: w, msgs: msgs}
}

func (r *renderer) sink(ev ensure.Event) {
	switch ev.Kind {
	case ensure.KindWaiting:
		if !r.waited && r.mode != builder.ModeQuiet {
			r.waited = true
			r.msgs.notice("waiting for another build of %s (%s) to finish", ev.Ref, ev.Holder)
		}
	case ensure.KindWarning:
		r.warnings = append(r.warnings, ev.Ref+": "+ev.Message)
	case ensure.KindBuilding:
		r.start()
	case ensure.KindProgress:
		if r.ch == nil {
			r.start()
		}
		r.ch <- ev.Status
	case ensure.KindPushed, ensure.KindDone, ensure.KindFailed, ensure.KindFound:
		r.stop()
		// Warnings wait for the display to end, so that they are not lost
		// in it.
		for _, w := range r.warnings {
			r.msgs.warn("%s", w)
		}
		r.warnings = nil
	}
}

// start opens a progress display for one build.
func (r *renderer) start() {
	if r.ch != nil {
		return
	}
	r.ch, r.shown = make(chan *progress.Status), make(chan struct{})
	go func(ch chan *progress.Status, shown chan struct{}) {
		defer close(shown)
		if r.mode == builder.ModeQuiet {
			for range ch {
			}
			return
		}
		if err := builder.Display(context.Background(), r.mode, r.w, ch); err != nil && r.ctx.Err() == nil {
			r.msgs.warn("%v", err)
		}
	}(r.ch, r.shown)
}

// stop closes the display and waits until it has shown everything.
func (r *renderer) stop() {
	if r.ch == nil {
		return
	}
	close(r.ch)
	<-r.shown
	r.ch = nil
}
