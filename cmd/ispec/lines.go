package main

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
)

// lockedWriter serializes writes to w: each Write reaches w whole, so
// lines written by concurrent builds never interleave inside a line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Unwrap names the writer under the lock, so that a live terminal display
// (builder.Display) can reach the terminal: it is the only writer while it
// runs (one build at a time; messages wait for it to end).
func (l *lockedWriter) Unwrap() io.Writer { return l.w }

// lineWriter collects one build's progress and hands it on a line at a
// time, so that several builds can share stderr: each plain line starts
// with "[spec] ", each JSON line gets a "spec" field. Not safe for
// concurrent use: one build's display writes to it.
type lineWriter struct {
	out  io.Writer
	spec string
	json bool
	buf  []byte
}

func newLineWriter(out io.Writer, spec string, jsonLines bool) *lineWriter {
	return &lineWriter{out: out, spec: spec, json: jsonLines}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if _, err := l.out.Write(l.tag(l.buf[:i+1])); err != nil {
			return len(p), err
		}
		l.buf = l.buf[i+1:]
	}
}

// flush hands on a last line that has no newline.
func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.out.Write(l.tag(append(l.buf, '\n')))
		l.buf = nil
	}
}

// tag marks line as the spec's.
func (l *lineWriter) tag(line []byte) []byte {
	if !l.json {
		return append([]byte("["+l.spec+"] "), line...)
	}
	trimmed := bytes.TrimLeft(line, " \t")
	if len(trimmed) < 2 || trimmed[0] != '{' || bytes.HasPrefix(bytes.TrimLeft(trimmed[1:], " \t"), []byte("}")) {
		return line
	}
	name, _ := json.Marshal(l.spec)
	out := append([]byte(`{"spec":`), name...)
	out = append(out, ',')
	return append(out, trimmed[1:]...)
}
