package cache

import (
	"context"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// DefaultJobs is how many lookups LookupAll runs at once when asked for 0.
const DefaultJobs = 8

// LookupAll looks every ref up with c, at most jobs at a time (DefaultJobs
// when jobs <= 0). References naming the same tag (after normalization, so
// "ubuntu:24.04" and "index.docker.io/library/ubuntu:24.04" are one) are
// looked up once. Results are in the order of refs, each with its own Ref.
func LookupAll(ctx context.Context, c Checker, refs []name.Tag, jobs int) []Result {
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	first := make(map[string]int, len(refs)) // normalized ref -> index of its first occurrence
	var unique []int
	for i, ref := range refs {
		if _, ok := first[ref.Name()]; !ok {
			first[ref.Name()] = i
			unique = append(unique, i)
		}
	}
	if p, ok := c.(Preparer); ok && len(unique) > 1 {
		batch := make([]name.Tag, len(unique))
		for k, i := range unique {
			batch[k] = refs[i]
		}
		p.Prepare(ctx, batch)
	}
	results := make([]Result, len(refs))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for _, i := range unique {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = Result{Ref: refs[i], Err: ctx.Err(), Message: ctx.Err().Error()}
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i] = c.Lookup(ctx, refs[i])
		}()
	}
	wg.Wait()
	for i, ref := range refs {
		if j := first[ref.Name()]; j != i {
			results[i] = results[j]
			results[i].Ref = ref
		}
	}
	return results
}
