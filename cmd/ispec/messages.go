package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"
)

// messages prints ispec's own messages on stderr: errors, warnings and
// notices. They are "ispec: ..." lines, or, when progress is JSON, one JSON
// object per line ({"error": {"class", "message"}}, {"warning":
// {"message"}}, {"notice": {"message"}}), so that stderr is all JSON.
type messages struct {
	mu   sync.Mutex
	w    io.Writer
	json bool
}

// newMessages returns the messages of a command whose --progress is
// progress ("" when it has none).
func newMessages(w io.Writer, progress string) *messages {
	return &messages{w: w, json: progress == "json" || progress == "rawjson"}
}

// commandMessages returns the messages of cmd, JSON when its --progress
// flag asks for JSON.
func commandMessages(cmd *cobra.Command, w io.Writer) *messages {
	progress := ""
	if cmd != nil {
		if f := cmd.Flags().Lookup("progress"); f != nil {
			progress = f.Value.String()
		}
	}
	return newMessages(w, progress)
}

type messageRecord struct {
	Message string `json:"message"`
}

func (m *messages) print(kind, text string, record any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.json {
		dt, err := json.Marshal(map[string]any{kind: record})
		if err == nil {
			fmt.Fprintf(m.w, "%s\n", dt)
			return
		}
	}
	fmt.Fprintln(m.w, text)
}

// warn prints a warning.
func (m *messages) warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.print("warning", "ispec: warning: "+msg, messageRecord{msg})
}

// notice prints what ispec is doing when the user may wonder.
func (m *messages) notice(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	m.print("notice", "ispec: "+msg, messageRecord{msg})
}

// error prints the error a command ended with.
func (m *messages) error(err error) { m.specError("", err) }

// specError prints the error a spec ended with; as JSON, its record
// names the spec file.
func (m *messages) specError(spec string, err error) {
	rec := newErrorRecord(err)
	rec.Spec = spec
	m.print("error", "ispec: "+err.Error(), rec)
	if h := hint(err); h != "" {
		m.print("hint", "ispec: hint: "+h, messageRecord{h})
	}
}
