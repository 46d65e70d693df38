package ensure

import (
	"context"
	"fmt"
	"runtime/debug"
)

// PanicError is a build that panicked: a bug of ispec or of what it
// calls. The build fails with it (ClassInternal); the process and the
// other builds go on. The stack is logged (WithLogger), never sent to
// callers.
type PanicError struct {
	// Ref is the image the build was for.
	Ref string
	// Value is what the code panicked with.
	Value any
	// Stack is the goroutine's stack where it panicked.
	Stack []byte
}

// Error implements error; it carries neither the value nor the stack,
// which may hold anything the code had at hand.
func (e *PanicError) Error() string {
	return "building " + e.Ref + ": internal error: the build panicked (the server's log has the stack)"
}

// ErrorClass implements the classification ClassOf reads: internal.
func (e *PanicError) ErrorClass() Class { return ClassInternal }

// recovered turns a recovered panic of f's build into its error, logging
// the stack.
func (p *Pipeline) recovered(f *flight, v any) error {
	e := &PanicError{Ref: f.ref.Name(), Value: v, Stack: debug.Stack()}
	p.log.Error("a build panicked; it fails, the others go on", "ref", e.Ref, "build_id", f.id, "panic", fmt.Sprint(v), "stack", string(e.Stack))
	return e
}

// flyRecovered is fly, with a panic turned into the build's failure.
func (p *Pipeline) flyRecovered(ctx context.Context, f *flight) (res *Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, p.recovered(f, v)
		}
	}()
	return p.fly(ctx, f)
}
