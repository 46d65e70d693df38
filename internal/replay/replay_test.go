package replay

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
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
	started := make(chan struct{}, len(got))
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Follow(context.Background(), func(v int) {
				if got[i] = append(got[i], v); v == 2 {
					started <- struct{}{}
				}
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	for range got {
		<-started
	}
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

// latest folds "key=value" items into the latest value per key, in the
// order keys first came; every item costs its length.
type latest struct {
	order []string
	vals  map[string]string
	folds int
}

func (f *latest) Fold(items []string) {
	f.folds++
	if f.vals == nil {
		f.vals = map[string]string{}
	}
	for _, it := range items {
		k, _, _ := strings.Cut(it, "=")
		if _, ok := f.vals[k]; !ok {
			f.order = append(f.order, k)
		}
		f.vals[k] = it
	}
}

func (f *latest) Head() []string {
	out := make([]string, 0, len(f.order))
	for _, k := range f.order {
		out = append(out, f.vals[k])
	}
	return out
}

func (f *latest) Size(it string) int { return len(it) }

func TestALateFollowerGetsTheLatestItemPerKey(t *testing.T) {
	l := NewCompacted[string](&latest{}, 100, 0)
	for i := 0; i < 1000; i++ {
		l.Add(fmt.Sprintf("step%d=%04d", i%3, i)) // 10 bytes each
	}
	l.Close()
	var got []string
	if err := l.Follow(context.Background(), func(s string) { got = append(got, s) }); err != nil {
		t.Fatal(err)
	}
	if len(got) > 3+10 {
		t.Errorf("a late follower read %d items of 1000; want the 3 latest plus at most 10 unfolded", len(got))
	}
	if last := got[len(got)-1]; last != "step0=0999" {
		t.Errorf("last item %q, want step0=0999", last)
	}
	seen := map[string]string{}
	for _, s := range got {
		k, _, _ := strings.Cut(s, "=")
		seen[k] = s
	}
	if seen["step1"] != "step1=0997" || seen["step2"] != "step2=0998" {
		t.Errorf("latest per key %v", seen)
	}
	l.mu.Lock()
	unfolded := l.unfolded
	l.mu.Unlock()
	if unfolded > 100 {
		t.Errorf("%d unfolded bytes kept, limit 100", unfolded)
	}
}

func TestAFollowerThatKeepsUpMissesNothing(t *testing.T) {
	l := NewCompacted[string](&latest{}, 200, 0) // 50 items (350 bytes) between reads stay under the hard limit
	got := make(chan []string, 1)
	read := make(chan int, 1000)
	go func() {
		var all []string
		err := l.Follow(context.Background(), func(s string) { all = append(all, s); read <- len(all) })
		if err != nil {
			t.Error(err)
		}
		got <- all
	}()
	waitRead := func(want int) {
		t.Helper()
		for {
			select {
			case n := <-read:
				if n >= want {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the follower did not read %d items", want)
			}
		}
	}
	want := []string{"first=0000"}
	l.Add(want[0])
	waitRead(1) // the follower follows
	for i := 1; i < 500; i++ {
		s := fmt.Sprintf("k%d=%04d", i%5, i)
		want = append(want, s)
		l.Add(s)
		if i%50 == 49 {
			waitRead(i + 1)
		}
	}
	l.Close()
	if all := <-got; !reflect.DeepEqual(all, want) {
		t.Errorf("a follower that kept up got %d items, want all %d in order", len(all), len(want))
	}
}

func TestAStuckFollowerIsEndedInsteadOfHoldingTheStream(t *testing.T) {
	f := &latest{}
	l := NewCompacted[string](f, 100, 1600)
	block := make(chan struct{})
	inFn := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- l.Follow(context.Background(), func(string) {
			select {
			case inFn <- struct{}{}:
			default:
			}
			<-block
		})
	}()
	l.Add("a=0000000")
	select {
	case <-inFn:
	case <-time.After(10 * time.Second):
		t.Fatal("the follower never read")
	}
	for i := 0; i < 1000; i++ {
		l.Add(fmt.Sprintf("k%d=%04d", i%7, i))
	}
	l.mu.Lock()
	unfolded := l.unfolded
	l.mu.Unlock()
	if unfolded > 16*100+10 {
		t.Errorf("%d unfolded bytes kept for a stuck follower; want at most the hard limit, 1600", unfolded)
	}
	close(block)
	if err := <-done; !errors.Is(err, ErrBehind) {
		t.Errorf("the stuck follower's Follow = %v, want ErrBehind", err)
	}
}
