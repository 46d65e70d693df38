package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// parseTOML decodes with go-toml (which checks the grammar and table rules)
// and then reads the parser's syntax tree for lines and the source text of
// numbers, so that python_version = 3.10 keeps its "3.10".
func parseTOML(data []byte) (*node, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, syntaxErrorf(row, "parsing TOML: %s", strings.TrimPrefix(de.Error(), "toml: "))
		}
		return nil, syntaxErrorf(0, "parsing TOML: %s", strings.TrimPrefix(err.Error(), "toml: "))
	}
	raw := tomlRaw(data)
	budget := maxNodes
	n, err := fromTOML(doc, "", 0, raw, &budget)
	if err != nil {
		return nil, err
	}
	n.line = 1
	return n, nil
}

type tomlPos struct {
	line int
	text string // source text of a scalar value
}

// tomlRaw maps each value's path ("env.A", "packages[2]") to its line (the
// line of its key, or of the element in an array) and, for numbers, its
// source text.
func tomlRaw(data []byte) map[string]tomlPos {
	out := map[string]tomlPos{}
	p := unstable.Parser{}
	p.Reset(data)
	var table []string
	arrayTables := map[string]int{}
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			keys, line := tomlKey(&p, e)
			table = keys
			path := strings.Join(keys, ".")
			if e.Kind == unstable.ArrayTable {
				i := arrayTables[path]
				arrayTables[path] = i + 1
				setLine(out, path, line)
				table = append(append([]string{}, keys[:len(keys)-1]...), fmt.Sprintf("%s[%d]", keys[len(keys)-1], i))
				path = strings.Join(table, ".")
			}
			setLine(out, path, line)
		case unstable.KeyValue:
			tomlKeyValue(&p, e, table, out)
		}
	}
	return out
}

// tomlKeyValue records a key = value expression under the table prefix.
func tomlKeyValue(p *unstable.Parser, e *unstable.Node, table []string, out map[string]tomlPos) {
	keys, line := tomlKey(p, e)
	full := append(append([]string{}, table...), keys...)
	for i := len(table) + 1; i < len(full); i++ {
		setLine(out, strings.Join(full[:i], "."), line) // dotted keys: a.b = 1
	}
	tomlValue(p, e.Value(), strings.Join(full, "."), line, out)
}

// tomlValue records a value at path, and the elements and members inside it.
func tomlValue(p *unstable.Parser, v *unstable.Node, path string, line int, out map[string]tomlPos) {
	pos := tomlPos{line: line}
	if v.Kind == unstable.Float || v.Kind == unstable.Integer {
		pos.text = string(v.Data)
	}
	out[path] = pos
	switch v.Kind {
	case unstable.Array:
		it := v.Children()
		for i := 0; it.Next(); {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			l := tomlFirstLine(p, c)
			if l == 0 {
				l = line
			}
			tomlValue(p, c, fmt.Sprintf("%s[%d]", path, i), l, out)
			i++
		}
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				tomlKeyValue(p, c, strings.Split(path, "."), out)
			}
		}
	}
}

func setLine(out map[string]tomlPos, path string, line int) {
	if _, ok := out[path]; !ok {
		out[path] = tomlPos{line: line}
	}
}

// tomlKey returns the parts of an expression's key and the key's line.
func tomlKey(p *unstable.Parser, e *unstable.Node) ([]string, int) {
	var parts []string
	line := 0
	it := e.Key()
	for it.Next() {
		k := it.Node()
		parts = append(parts, string(k.Data))
		if line == 0 {
			line = tomlLine(p, k)
		}
	}
	return parts, line
}

// tomlFirstLine is the line of a value: its own, or for an array or an
// inline table (which the parser gives no range) that of its first member.
func tomlFirstLine(p *unstable.Parser, v *unstable.Node) int {
	if l := tomlLine(p, v); l != 0 || (v.Kind != unstable.Array && v.Kind != unstable.InlineTable) {
		return l
	}
	it := v.Children()
	for it.Next() {
		c := it.Node()
		if c.Kind == unstable.KeyValue {
			if _, l := tomlKey(p, c); l != 0 {
				return l
			}
			continue
		}
		if l := tomlFirstLine(p, c); l != 0 {
			return l
		}
	}
	return 0
}

// tomlLine is the line of a node; 0 when the parser cannot say (its data
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
		return nil, syntaxErrorf(0, "document has more than %d values", maxNodes)
	}
	pos := raw[path]
	if depth > maxDepth {
		return nil, syntaxErrorf(pos.line, "%s: nested deeper than %d levels", path, maxDepth)
	}
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
		for i, e := range t {
			c, err := fromTOML(e, fmt.Sprintf("%s[%d]", path, i), depth+1, raw, budget)
			if err != nil {
				return nil, err
			}
			if c.line == 0 {
				c.line = pos.line
			}
			n.vals = append(n.vals, c)
		}
	case []map[string]any: // an array of tables
		n.kind = seqNode
		for i, e := range t {
			c, err := fromTOML(e, fmt.Sprintf("%s[%d]", path, i), depth+1, raw, budget)
			if err != nil {
				return nil, err
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
