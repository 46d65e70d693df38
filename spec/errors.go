package spec

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is a problem with one field of one spec file.
type FieldError struct {
	// File is the spec file's path as given.
	File string
	// Line is the 1-based line of the value, or 0 when unknown.
	Line int
	// Field is the field path, such as "env.FOO" or "packages[2]"; empty for
	// the document as a whole.
	Field string
	// Msg says what is wrong and what was expected.
	Msg string
}

// Error formats the error as file:line: field: message.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a spec, in file order.
type Errors []*FieldError

// Error lists each problem on its own line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual errors.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ErrInvalid is matched (with errors.Is) by every error that means the spec,
// not the machine, is at fault. The CLI maps it to exit code 2.
var ErrInvalid = errors.New("invalid spec")

// Is makes errors.Is(err, ErrInvalid) true for field errors.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// collector gathers field errors for one file.
type collector struct {
	file  string
	lines map[string]int
	errs  Errors
}

func (c *collector) add(line int, field, format string, args ...any) {
	if line == 0 && c.lines != nil {
		line = c.lines[field]
		if line == 0 {
			top, _, _ := strings.Cut(field, ".")
			top, _, _ = strings.Cut(top, "[")
			line = c.lines[top]
		}
	}
	msg := maskURLs(fmt.Sprintf(format, args...))
	c.errs = append(c.errs, &FieldError{File: c.file, Line: line, Field: field, Msg: msg})
}

func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs
}
