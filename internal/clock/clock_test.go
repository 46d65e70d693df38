package clock

import (
	"testing"
	"time"
)

func TestFakeFiresOnlyWhenAdvancedPastTheWait(t *testing.T) {
	f := NewFake(time.Unix(0, 0))
	ch := f.NewTimer(time.Second).C()
	f.Advance(999 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("fired early")
	default:
	}
	f.Advance(time.Millisecond)
	select {
	case at := <-ch:
		if !at.Equal(time.Unix(1, 0)) {
			t.Errorf("fired at %v", at)
		}
	default:
		t.Fatal("did not fire")
	}
	if f.Waiters() != 0 {
		t.Errorf("%d waiters left", f.Waiters())
	}
}
