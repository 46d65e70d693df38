package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	yaml "go.yaml.in/yaml/v3"
)

// Limits that bound the work any input can cause.
const (
	// MaxFileSize is the largest spec file accepted, in bytes.
	MaxFileSize = 1 << 20
	// maxDepth is the deepest nesting of lists and maps accepted.
	maxDepth = 32
	// maxNodes is the most values (after alias expansion) a document may hold.
	maxNodes = 100_000
)

// Format is a spec file's syntax.
type Format string

// The spec file formats.
const (
	YAML Format = "yaml"
	JSON Format = "json"
	TOML Format = "toml"
)

// FormatOf picks the format from a file name's extension; YAML otherwise.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return JSON
	case ".toml":
		return TOML
	default:
		return YAML
	}
}

type nodeKind int

const (
	nullNode nodeKind = iota
	scalarNode
	seqNode
	mapNode
)

// scalar types, as the source syntax typed them.
const (
	tStr   = "string"
	tInt   = "integer"
	tFloat = "number"
	tBool  = "boolean"
	tNull  = "null"
)

// node is a format-neutral parsed value that keeps source text and lines.
type node struct {
	kind  nodeKind
	typ   string // scalar type: tStr, tInt, tFloat, tBool
	value string // scalar source text (unescaped for strings)
	line  int
	keys  []string // map keys, in source order
	vals  []*node  // map values or sequence items
}

func (n *node) describe() string {
	switch n.kind {
	case nullNode:
		return tNull
	case seqNode:
		return "a list"
	case mapNode:
		return "a mapping"
	}
	return "a " + n.typ
}

// parse turns a document into a node tree, bounded by the package limits.
func parse(data []byte, f Format) (*node, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("file is %d bytes, larger than the %d byte limit for a spec", len(data), MaxFileSize)
	}
	switch f {
	case JSON:
		return parseJSON(data)
	case TOML:
		return parseTOML(data)
	default:
		return parseYAML(data)
	}
}

func parseYAML(data []byte) (*node, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &node{kind: nullNode, line: 1}, nil
		}
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, fmt.Errorf("line %d: a spec file holds one YAML document, found another", extra.Line)
	}
	budget := maxNodes
	return fromYAML(&doc, 0, &budget)
}

func fromYAML(y *yaml.Node, depth int, budget *int) (*node, error) {
	*budget--
	if *budget < 0 {
		return nil, fmt.Errorf("document has more than %d values", maxNodes)
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested deeper than %d levels", y.Line, maxDepth)
	}
	switch y.Kind {
	case yaml.DocumentNode:
		if len(y.Content) == 0 {
			return &node{kind: nullNode, line: y.Line}, nil
		}
		return fromYAML(y.Content[0], depth, budget)
	case yaml.AliasNode:
		return fromYAML(y.Alias, depth+1, budget)
	case yaml.SequenceNode:
		n := &node{kind: seqNode, line: y.Line}
		for _, c := range y.Content {
			v, err := fromYAML(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, v)
		}
		return n, nil
	case yaml.MappingNode:
		n := &node{kind: mapNode, line: y.Line}
		for i := 0; i+1 < len(y.Content); i += 2 {
			k, v := y.Content[i], y.Content[i+1]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: YAML merge keys (<<) are not supported in spec files", k.Line)
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a mapping key must be a plain value", k.Line)
			}
			vn, err := fromYAML(v, depth+1, budget)
			if err != nil {
				return nil, err
			}
			if err := n.add(k.Value, vn, k.Line); err != nil {
				return nil, err
			}
		}
		return n, nil
	case yaml.ScalarNode:
		n := &node{kind: scalarNode, value: y.Value, line: y.Line, typ: tStr}
		switch y.ShortTag() {
		case "!!null":
			return &node{kind: nullNode, line: y.Line}, nil
		case "!!int":
			n.typ = tInt
		case "!!float":
			n.typ = tFloat
		case "!!bool":
			n.typ = tBool
		}
		return n, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML value", y.Line)
}

// add appends a key to a map node, refusing duplicates.
func (n *node) add(key string, v *node, line int) error {
	for _, k := range n.keys {
		if k == key {
			return fmt.Errorf("line %d: key %q appears twice", line, key)
		}
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
	return nil
}

func parseJSON(data []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	lineAt := func(off int64) int { return 1 + bytes.Count(data[:off], []byte("\n")) }
	budget := maxNodes
	var walk func(depth int) (*node, error)
	walk = func(depth int) (*node, error) {
		budget--
		if budget < 0 {
			return nil, fmt.Errorf("document has more than %d values", maxNodes)
		}
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		line := lineAt(off)
		if depth > maxDepth {
			return nil, fmt.Errorf("line %d: nested deeper than %d levels", line, maxDepth)
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
				_, err := dec.Token()
				return n, err
			}
			n := &node{kind: mapNode, line: line}
			for dec.More() {
				koff := dec.InputOffset()
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := walk(depth + 1)
				if err != nil {
					return nil, err
				}
				if err := n.add(kt.(string), v, lineAt(koff)); err != nil {
					return nil, err
				}
			}
			_, err := dec.Token()
			return n, err
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
		return nil, fmt.Errorf("line %d: unexpected JSON token", line)
	}
	n, err := walk(0)
	if err != nil {
		return nil, fmt.Errorf("parsing JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing JSON: unexpected data after the top-level value")
	}
	return n, nil
}

// parseTOML decodes with go-toml (which checks the grammar and table rules)
// and then reads the parser's syntax tree for lines and the source text of
// numbers, so that python_version = 3.10 keeps its "3.10".
func parseTOML(data []byte) (*node, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, fmt.Errorf("parsing TOML: line %d: %s", row, de.Error())
		}
		return nil, fmt.Errorf("parsing TOML: %w", err)
	}
	raw := tomlRaw(data)
	budget := maxNodes
	return fromTOML(doc, "", 0, raw, &budget)
}

type tomlPos struct {
	line int
	text string // source text of a scalar value
}

// tomlRaw maps each top-level or table key path ("a.b") to its line and, for
// scalars, its source text.
func tomlRaw(data []byte) map[string]tomlPos {
	out := map[string]tomlPos{}
	p := unstable.Parser{}
	p.Reset(data)
	var table []string
	keyOf := func(n *unstable.Node) []string {
		var parts []string
		it := n.Key()
		for it.Next() {
			parts = append(parts, string(it.Node().Data))
		}
		return parts
	}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = keyOf(e)
		case unstable.KeyValue:
			path := strings.Join(append(append([]string{}, table...), keyOf(e)...), ".")
			v := e.Value()
			pos := tomlPos{line: tomlLine(&p, v)}
			if v.Kind == unstable.Float || v.Kind == unstable.Integer {
				pos.text = string(v.Data)
			}
			out[path] = pos
		}
	}
	return out
}

// tomlLine is the line of a value; 0 when the parser cannot say (its data
// was unescaped into a copy, which the parser's Range refuses with a panic).
func tomlLine(p *unstable.Parser, v *unstable.Node) (line int) {
	defer func() {
		if recover() != nil {
			line = 0
		}
	}()
	if v.Raw.Length > 0 {
		return p.Shape(v.Raw).Start.Line
	}
	return p.Shape(p.Range(v.Data)).Start.Line
}

func fromTOML(v any, path string, depth int, raw map[string]tomlPos, budget *int) (*node, error) {
	*budget--
	if *budget < 0 {
		return nil, fmt.Errorf("document has more than %d values", maxNodes)
	}
	if depth > maxDepth {
		return nil, fmt.Errorf("%s: nested deeper than %d levels", path, maxDepth)
	}
	pos := raw[path]
	n := &node{kind: scalarNode, line: pos.line}
	switch t := v.(type) {
	case map[string]any:
		n.kind = mapNode
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return raw[join(path, keys[i])].line < raw[join(path, keys[j])].line })
		for _, k := range keys {
			c, err := fromTOML(t[k], join(path, k), depth+1, raw, budget)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.vals = append(n.vals, c)
		}
	case []any:
		n.kind = seqNode
		for _, e := range t {
			c, err := fromTOML(e, "", depth+1, raw, budget)
			if err != nil {
				return nil, err
			}
			if c.line == 0 {
				c.line = pos.line
			}
			n.vals = append(n.vals, c)
		}
	case string:
		n.typ, n.value = tStr, t
	case bool:
		n.typ, n.value = tBool, fmt.Sprint(t)
	case int64:
		n.typ, n.value = tInt, fmt.Sprint(t)
	case float64:
		n.typ, n.value = tFloat, fmt.Sprint(t)
		if pos.text != "" {
			n.value = pos.text
		}
	default:
		n.typ, n.value = tStr, fmt.Sprint(t) // dates and times: their text
	}
	return n, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
