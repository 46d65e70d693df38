package server

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
)

// sender sends one stream's events, each within a deadline: a caller
// that stops reading has its stream ended (its call's context is
// cancelled through stop), and the build goes on for the others. It is
// used from one goroutine at a time (a pipeline sink).
type sender struct {
	in      chan *apiv1.BuildEvent
	out     chan error
	timeout time.Duration
	stop    context.CancelFunc
	err     error
}

// newSender starts sending with send; stop ends the call when a send
// fails or times out. close must be called when the call ends.
func newSender(send func(*apiv1.BuildEvent) error, timeout time.Duration, stop context.CancelFunc) *sender {
	s := &sender{in: make(chan *apiv1.BuildEvent), out: make(chan error, 1), timeout: timeout, stop: stop}
	go func() {
		for ev := range s.in {
			s.out <- send(ev)
		}
	}()
	return s
}

// send sends ev unless an earlier send failed.
func (s *sender) send(ev *apiv1.BuildEvent) {
	if s.err != nil || ev == nil {
		return
	}
	t := time.NewTimer(s.timeout)
	defer t.Stop()
	select {
	case s.in <- ev:
	case <-t.C:
		s.timedOut()
		return
	}
	select {
	case err := <-s.out:
		if err != nil {
			s.err = err
			s.stop()
		}
	case <-t.C:
		s.timedOut()
	}
}

func (s *sender) timedOut() {
	s.err = status.Errorf(codes.DeadlineExceeded, "the caller read no event for %s: its stream is ended (the build goes on; watch it again to follow it)", s.timeout)
	s.stop()
}

// close ends the sending goroutine once its last send returns (the
// stream's end unblocks a send the caller never read).
func (s *sender) close() { close(s.in) }
