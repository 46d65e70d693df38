package builder

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"

	"github.com/ispec-dev/ispec/builder/progress"
	"github.com/ispec-dev/ispec/internal/replay"
)

// Progress is the progress of one build as a stream of solve statuses
// (BuildKit's, converted to progress.Status) that any number of watchers
// can read. A watcher that subscribes late gets the latest state of every
// step and the last bytes of the logs (see progress.State), then every status from then on; a watcher that
// lags keeps what it has not read. The zero value is not usable; call
// NewProgress.
type Progress struct {
	log *replay.Log[*progress.Status]
}

// NewProgress returns an open, empty Progress that replays at most
// DefaultProgressLogLimit bytes of logs to a late watcher.
func NewProgress() *Progress { return NewProgressLimit(DefaultProgressLogLimit) }

// NewProgressLimit returns an open, empty Progress that replays at most
// limit bytes of logs to a late watcher (0: none; a watcher that
// subscribes before the build starts still gets every status).
func NewProgressLimit(limit int) *Progress {
	fold := statusFold{progress.NewState(limit)}
	return &Progress{log: replay.NewCompacted[*progress.Status](fold, max(limit/8, 64<<10), 0)}
}

// Publish appends an event. Publishing after Close is ignored.
func (p *Progress) Publish(s *client.SolveStatus) { p.log.Add(StatusOf(s)) }

// Close ends the stream: every watcher's channel is closed once it has
// read all events. Close is idempotent.
func (p *Progress) Close() { p.log.Close() }

// Subscribe returns a channel with the build's events from its start
// (folded for a late watcher), closed after the last one once the build
// ends, or when ctx is done. Events are shared: watchers must not modify
// them.
func (p *Progress) Subscribe(ctx context.Context) <-chan *progress.Status {
	return p.log.Subscribe(ctx)
}

// Progress display modes, as buildx names them.
const (
	// ModeAuto shows a live display on a terminal and plain text otherwise.
	ModeAuto = "auto"
	// ModeTTY is the live terminal display.
	ModeTTY = "tty"
	// ModePlain is plain text, one line per event.
	ModePlain = "plain"
	// ModeRawJSON is one JSON object per solve status.
	ModeRawJSON = "rawjson"
	// ModeQuiet shows nothing.
	ModeQuiet = "quiet"
)

// Display renders a progress stream on w the way buildx does, until ch is
// closed or ctx is done. mode is one of ModeAuto, ModeTTY, ModePlain,
// ModeRawJSON ("json" is accepted for it) or ModeQuiet; ModeTTY fails when
// w is not a terminal. The live display needs the terminal itself: a
// writer that wraps one (a lock around stderr, say) names it with an
// Unwrap() io.Writer method, and the live display writes to the terminal
// directly while it runs.
func Display(ctx context.Context, mode string, w io.Writer, ch <-chan *progress.Status) error {
	if mode == "json" {
		mode = ModeRawJSON
	}
	if mode == ModeAuto || mode == ModeTTY {
		if f := terminalOf(w); f != nil {
			w = f
		}
	}
	d, err := progressui.NewDisplay(w, progressui.DisplayMode(mode))
	if err != nil {
		// Drain, so that a producer never blocks on a watcher that failed.
		go func() {
			for range ch {
			}
		}()
		return fmt.Errorf("progress display: %w", err)
	}
	in := make(chan *client.SolveStatus)
	go func() {
		defer close(in)
		for s := range ch {
			select {
			case in <- SolveStatus(s):
			case <-ctx.Done():
				for range ch {
				}
				return
			}
		}
	}()
	if _, err := d.UpdateFrom(ctx, in); err != nil {
		return fmt.Errorf("progress display: %w", err)
	}
	return nil
}

// terminalOf returns the file under w (following Unwrap() io.Writer
// methods), or nil when there is none. Whether the file is a terminal is
// progressui's to decide.
func terminalOf(w io.Writer) *os.File {
	for w != nil {
		switch v := w.(type) {
		case *os.File:
			return v
		case interface{ Unwrap() io.Writer }:
			w = v.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
