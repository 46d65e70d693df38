package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// parseJSON decodes a JSON document token by token, so that every value
// keeps its line, and every error says at which line it was found.
func parseJSON(data []byte) (*node, error) {
	// A syntax error found while walking tokens has its offset counted from
	// the start of the value being read; checking the whole document first
	// gives every syntax error its offset in the file.
	var whole json.RawMessage
	if err := json.Unmarshal(data, &whole); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off := min(max(se.Offset-1, 0), int64(len(data)))
			msg := se.Error()
			if msg == "unexpected end of JSON input" {
				msg = "the document ends before its last value is closed"
			}
			return nil, syntaxErrorf(1+bytes.Count(data[:off], []byte("\n")), "parsing JSON: %s", msg)
		}
		return nil, syntaxErrorf(0, "parsing JSON: %s", err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// lineAt is the line of the first token at or after off (the decoder's
	// offset is before the whitespace and separators that precede it).
	lineAt := func(off int64) int {
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n,:", data[off]) >= 0 {
			off++
		}
		return 1 + bytes.Count(data[:off], []byte("\n"))
	}
	fail := func(err error) error {
		return syntaxErrorf(lineAt(dec.InputOffset()), "parsing JSON: %s", err)
	}
	budget := maxNodes
	var walk func(depth int) (*node, error)
	walk = func(depth int) (*node, error) {
		budget--
		if budget < 0 {
			return nil, syntaxErrorf(0, "document has more than %d values", maxNodes)
		}
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, fail(err)
		}
		line := lineAt(off)
		if depth > maxDepth {
			return nil, syntaxErrorf(line, "nested deeper than %d levels", maxDepth)
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '[' {
				n := &node{kind: seqNode, line: line}
				for dec.More() {
					v, err := walk(depth + 1)
					if err != nil {
						return nil, err
					}
					n.vals = append(n.vals, v)
				}
				if _, err := dec.Token(); err != nil {
					return nil, fail(err)
				}
				return n, nil
			}
			n := &node{kind: mapNode, line: line}
			for dec.More() {
				koff := dec.InputOffset()
				kt, err := dec.Token()
				if err != nil {
					return nil, fail(err)
				}
				v, err := walk(depth + 1)
				if err != nil {
					return nil, err
				}
				if err := n.add(kt.(string), v, lineAt(koff)); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, fail(err)
			}
			return n, nil
		case string:
			return &node{kind: scalarNode, typ: tStr, value: t, line: line}, nil
		case json.Number:
			typ := tFloat
			if !strings.ContainsAny(string(t), ".eE") {
				typ = tInt
			}
			return &node{kind: scalarNode, typ: typ, value: string(t), line: line}, nil
		case bool:
			return &node{kind: scalarNode, typ: tBool, value: fmt.Sprint(t), line: line}, nil
		case nil:
			return &node{kind: nullNode, line: line}, nil
		}
		return nil, syntaxErrorf(line, "parsing JSON: unexpected token")
	}
	n, err := walk(0)
	if err != nil {
		return nil, err
	}
	off := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, syntaxErrorf(lineAt(off), "parsing JSON: unexpected data after the top-level value")
	}
	return n, nil
}
