package replay

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"
)

func TestLateFollowersSeeEverythingFromTheStart(t *testing.T) {
	l := New[int]()
	l.Add(1)
	l.Add(2)
	var wg sync.WaitGroup
	got := make([][]int, 3)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Follow(context.Background(), func(v int) { got[i] = append(got[i], v) }); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	l.Add(3)
	l.Close()
	l.Add(4) // after Close: ignored
	wg.Wait()
	var late []int
	for v := range l.Subscribe(context.Background()) {
		late = append(late, v)
	}
	for i, g := range append(got, late) {
		if !reflect.DeepEqual(g, []int{1, 2, 3}) {
			t.Errorf("follower %d got %v, want [1 2 3]", i, g)
		}
	}
}

func TestFollowEndsWithItsContext(t *testing.T) {
	l := New[string]()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Follow(ctx, func(string) {}) }()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Follow = %v, want context.Canceled", err)
	}
}
