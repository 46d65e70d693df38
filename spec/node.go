package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Limits that bound the work any input can cause.
const (
	// MaxFileSize is the largest spec file accepted, in bytes.
	MaxFileSize = 1 << 20
	// MaxBaseDepth is the most nested base specs (base_image: {spec: ...})
	// below a spec: each is an image to resolve and maybe build.
	MaxBaseDepth = 16
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

// syntaxError is a document that does not parse, at a line when known.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

func syntaxErrorf(line int, format string, args ...any) error {
	return &syntaxError{line: line, msg: fmt.Sprintf(format, args...)}
}

var yamlErrRe = lazyRe(`^yaml: line ([0-9]+): ((?s).*)$`)

// parse turns a document into a node tree, bounded by the package limits.
// Its errors are *syntaxError.
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
		if m := yamlErrRe.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, syntaxErrorf(line, "parsing YAML: %s", m[2])
		}
		return nil, syntaxErrorf(0, "parsing YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, syntaxErrorf(extra.Line, "a spec file holds one YAML document, found another")
	}
	budget := maxNodes
	return fromYAML(&doc, 0, &budget)
}

func fromYAML(y *yaml.Node, depth int, budget *int) (*node, error) {
	*budget--
	if *budget < 0 {
		return nil, syntaxErrorf(0, "document has more than %d values", maxNodes)
	}
	if depth > maxDepth {
		return nil, syntaxErrorf(y.Line, "nested deeper than %d levels", maxDepth)
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
				return nil, syntaxErrorf(k.Line, "YAML merge keys (<<) are not supported in spec files")
			}
			if k.Kind != yaml.ScalarNode {
				return nil, syntaxErrorf(k.Line, "a mapping key must be a plain value")
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
	return nil, syntaxErrorf(y.Line, "unsupported YAML value")
}

// add appends a key to a map node, refusing duplicates.
func (n *node) add(key string, v *node, line int) error {
	for _, k := range n.keys {
		if k == key {
			return syntaxErrorf(line, "key %q appears twice", key)
		}
	}
	n.keys = append(n.keys, key)
	n.vals = append(n.vals, v)
	return nil
}
