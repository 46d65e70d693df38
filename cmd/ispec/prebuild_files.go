package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ispec-dev/ispec/internal/atomicfile"
)

// writeFileAtomic writes v as JSON to path through a temporary file in
// the same folder, renamed into place: a reader sees the old file or the
// whole new one, never part of it.
func writeFileAtomic(path string, v any) error {
	dt, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(dt, '\n'), 0o644)
}

// appendFile appends text to the file at path, making it if needed.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// checkJSONOut refuses, before any work, a --json-out whose folder does
// not exist or that names a folder.
func checkJSONOut(path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return usageError{fmt.Errorf("--json-out %s: folder %s does not exist", path, filepath.Dir(path))}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usageError{fmt.Errorf("--json-out %s is a folder: name a file", path)}
	}
	return nil
}
