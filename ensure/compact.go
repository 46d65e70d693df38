package ensure

import (
	"sync/atomic"

	"github.com/ispec-dev/ispec/builder/progress"
	"github.com/ispec-dev/ispec/internal/replay"
)

// eventFold folds a build's events for late joiners (a replay.Folder):
// every event but progress in order, and the progress folded into one
// event with the latest state of each step and the last bytes of the logs
// (progress.State). Once dropped (a finished build), progress is
// folded away: Watch replays the build's other events only.
type eventFold struct {
	limit    int
	drop     atomic.Bool
	before   []Event // events before the first progress
	after    []Event // events after it
	progress *progress.State
	tmpl     Event // the first progress event
}

// maxLag is how far (in bytes of events) a caller may fall behind its
// build before it is ended with replay.ErrBehind: a caller that stops
// reading does not hold the build's events.
const maxLag = 32 << 20

// newEventLog returns a build's event log that replays at most limit
// bytes of logs to a late joiner.
func newEventLog(limit int) (*replay.Log[Event], *eventFold) {
	f := &eventFold{limit: limit}
	return replay.NewCompacted[Event](f, max(limit/8, 64<<10), maxLag), f
}

// Fold implements replay.Folder.
func (f *eventFold) Fold(items []Event) {
	drop := f.drop.Load()
	if drop {
		f.progress = nil
	}
	for _, ev := range items {
		switch {
		case ev.Kind == KindProgress && ev.Status != nil:
			if drop {
				continue
			}
			if f.progress == nil {
				f.progress, f.tmpl = progress.NewState(f.limit), ev
			}
			f.progress.Add(ev.Status)
		case f.progress == nil && f.tmpl.Kind == KindUnspecified:
			f.before = append(f.before, ev)
		default:
			f.after = append(f.after, ev)
		}
	}
}

// Head implements replay.Folder.
func (f *eventFold) Head() []Event {
	out := make([]Event, 0, len(f.before)+1+len(f.after))
	out = append(out, f.before...)
	if f.progress != nil {
		if s := f.progress.Status(); s != nil {
			ev := f.tmpl
			ev.Status = s
			out = append(out, ev)
		}
	}
	return append(out, f.after...)
}

// Size implements replay.Folder.
func (f *eventFold) Size(ev Event) int {
	if ev.Status != nil {
		return progress.Size(ev.Status)
	}
	return 256 + len(ev.Holder) + len(ev.Message)
}
