package spec

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Decode parses a spec document in the given format. It is strict: unknown
// fields and values of the wrong type are errors that name the file (as
// given by file), the line and the field. It does not validate values or
// read referenced files; see Load for that.
func Decode(file string, data []byte, f Format) (*Spec, error) {
	root, err := parse(data, f)
	if err != nil {
		fe := &FieldError{File: file, Msg: err.Error()}
		var se *syntaxError
		if errors.As(err, &se) {
			fe.Line, fe.Msg = se.line, maskURLs(se.msg)
		}
		return nil, fe
	}
	c := &collector{file: file}
	s := &Spec{lines: map[string]int{}}
	if root.kind != mapNode {
		c.add(root.line, "", "expected a mapping of spec fields, found %s", root.describe())
		return nil, c.err()
	}
	named := false
	for i, key := range root.keys {
		v := root.vals[i]
		named = named || (key == "name" && v.kind != nullNode)
		fd, ok := fieldByName[key]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", key)
			if near := closest(key, fieldNames); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			}
			c.add(v.line, "", "%s", msg)
			continue
		}
		recordLines(s.lines, key, v, 0)
		fd.decode(c, key, v, s)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	if !named {
		s.Name = DefaultName
	}
	return s, nil
}

type fieldDecoder struct {
	decode func(c *collector, key string, v *node, s *Spec)
}

var fieldByName = map[string]fieldDecoder{
	"name":                {str(func(s *Spec) *string { return &s.Name })},
	"registry":            {str(func(s *Spec) *string { return &s.Registry })},
	"base_image":          {decodeBase},
	"python_version":      {str(func(s *Spec) *string { return &s.PythonVersion })},
	"python_exec":         {str(func(s *Spec) *string { return &s.PythonExec })},
	"packages":            {list(func(s *Spec) *[]string { return &s.Packages })},
	"requirements":        {str(func(s *Spec) *string { return &s.Requirements })},
	"apt_packages":        {list(func(s *Spec) *[]string { return &s.AptPackages })},
	"conda_packages":      {list(func(s *Spec) *[]string { return &s.CondaPackages })},
	"conda_channels":      {list(func(s *Spec) *[]string { return &s.CondaChannels })},
	"cuda":                {str(func(s *Spec) *string { return &s.Cuda })},
	"cudnn":               {str(func(s *Spec) *string { return &s.Cudnn })},
	"env":                 {strMap(func(s *Spec) *map[string]string { return &s.Env })},
	"commands":            {list(func(s *Spec) *[]string { return &s.Commands })},
	"copy":                {list(func(s *Spec) *[]string { return &s.Copy })},
	"source_root":         {str(func(s *Spec) *string { return &s.SourceRoot })},
	"source_copy_mode":    {str(func(s *Spec) *string { return &s.SourceCopyMode })},
	"pip_index":           {str(func(s *Spec) *string { return &s.PipIndex })},
	"pip_extra_index_url": {list(func(s *Spec) *[]string { return &s.PipExtraIndexURL })},
	"pip_extra_args":      {str(func(s *Spec) *string { return &s.PipExtraArgs })},
	"pip_secret_mounts":   {decodeSecretMounts},
	"platform":            {decodePlatform},
	"entrypoint":          {decodeEntrypoint},
	"workdir":             {str(func(s *Spec) *string { return &s.Workdir })},
	"user":                {str(func(s *Spec) *string { return &s.User })},
	"labels":              {strMap(func(s *Spec) *map[string]string { return &s.Labels })},
	"tag_format":          {str(func(s *Spec) *string { return &s.TagFormat })},
	"builder":             {str(func(s *Spec) *string { return &s.Builder })},
	"builder_options":     {decodeBuilderOptions},
	"registry_config":     {str(func(s *Spec) *string { return &s.RegistryConfig })},
	"layers":              {decodeLayers},
}

var fieldNames = func() []string {
	names := make([]string, 0, len(fieldByName))
	for k := range fieldByName {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}()

// scalarText returns a scalar's text as a string. Numbers keep their source
// text, so python_version: 3.10 is "3.10". Null is "" and ok.
func scalarText(c *collector, field string, v *node) (string, bool) {
	switch v.kind {
	case nullNode:
		return "", true
	case scalarNode:
		if v.typ == tBool {
			c.add(v.line, field, "expected a string, found the boolean %s (quote it if you mean the text)", v.value)
			return "", false
		}
		return v.value, true
	}
	c.add(v.line, field, "expected a string, found %s", v.describe())
	return "", false
}

func str(at func(*Spec) *string) func(*collector, string, *node, *Spec) {
	return func(c *collector, key string, v *node, s *Spec) {
		if t, ok := scalarText(c, key, v); ok {
			*at(s) = t
		}
	}
}

func stringList(c *collector, key string, v *node) ([]string, bool) {
	switch v.kind {
	case nullNode:
		return nil, true
	case seqNode:
		out := make([]string, 0, len(v.vals))
		ok := true
		for i, e := range v.vals {
			t, good := scalarText(c, fmt.Sprintf("%s[%d]", key, i), e)
			if good && e.kind == nullNode {
				c.add(e.line, fmt.Sprintf("%s[%d]", key, i), "expected a string, found null")
				good = false
			}
			ok = ok && good
			out = append(out, t)
		}
		return out, ok
	}
	c.add(v.line, key, "expected a list of strings, found %s", v.describe())
	return nil, false
}

func list(at func(*Spec) *[]string) func(*collector, string, *node, *Spec) {
	return func(c *collector, key string, v *node, s *Spec) {
		if l, ok := stringList(c, key, v); ok {
			*at(s) = l
		}
	}
}

func strMap(at func(*Spec) *map[string]string) func(*collector, string, *node, *Spec) {
	return func(c *collector, key string, v *node, s *Spec) {
		switch v.kind {
		case nullNode:
			return
		case mapNode:
			m := make(map[string]string, len(v.keys))
			for i, k := range v.keys {
				if t, ok := scalarText(c, key+"."+k, v.vals[i]); ok {
					m[k] = t
				}
			}
			*at(s) = m
		default:
			c.add(v.line, key, "expected a mapping of names to strings, found %s", v.describe())
		}
	}
}

func decodeBase(c *collector, key string, v *node, s *Spec) {
	switch v.kind {
	case nullNode:
		return
	case scalarNode:
		if t, ok := scalarText(c, key, v); ok {
			s.BaseImage = BaseImage{Ref: t}
		}
	case mapNode:
		for i, k := range v.keys {
			switch k {
			case "spec":
				if t, ok := scalarText(c, key+".spec", v.vals[i]); ok {
					s.BaseImage = BaseImage{Spec: t}
				}
			default:
				c.add(v.vals[i].line, key, "unknown field %q; a spec base is written {spec: ./base.yaml}", k)
			}
		}
		if s.BaseImage.Spec == "" && len(v.keys) == 0 {
			c.add(v.line, key, "expected an image reference or {spec: PATH}, found an empty mapping")
		}
	default:
		c.add(v.line, key, "expected an image reference or {spec: PATH}, found %s", v.describe())
	}
}

func decodePlatform(c *collector, key string, v *node, s *Spec) {
	var vals []string
	if v.kind == scalarNode {
		t, ok := scalarText(c, key, v)
		if !ok {
			return
		}
		for _, p := range strings.Split(t, ",") {
			vals = append(vals, strings.TrimSpace(p))
		}
	} else {
		l, ok := stringList(c, key, v)
		if !ok {
			return
		}
		vals = l
	}
	s.Platform = vals
}

func decodeEntrypoint(c *collector, key string, v *node, s *Spec) {
	if v.kind == scalarNode {
		c.add(v.line, key, "expected a list of strings (exec form, e.g. [\"python\", \"-m\", \"app\"]), found %s", v.describe())
		return
	}
	l, ok := stringList(c, key, v)
	if !ok {
		return
	}
	if v.kind == seqNode && l == nil {
		l = []string{}
	}
	s.Entrypoint = l
}

func decodeSecretMounts(c *collector, key string, v *node, s *Spec) {
	s.PipSecretMounts, _ = secretMountList(c, key, v)
}

// secretMountList reads a list of [source, target] pairs (or {source,
// target} or {source, env} mappings), the top-level pip_secret_mounts or a layer's; ok is
// false when an item was wrong (the good ones are returned).
func secretMountList(c *collector, key string, v *node) ([]SecretMount, bool) {
	if v.kind == nullNode {
		return nil, true
	}
	if v.kind != seqNode {
		c.add(v.line, key, "expected a list of [source, target] pairs (or {source, env} mappings), found %s", v.describe())
		return nil, false
	}
	var out []SecretMount
	good := true
	for i, e := range v.vals {
		field := fmt.Sprintf("%s[%d]", key, i)
		var m SecretMount
		switch e.kind {
		case seqNode:
			l, ok := stringList(c, field, e)
			if !ok {
				good = false
				continue
			}
			if len(l) != 2 {
				c.add(e.line, field, "expected a [source, target] pair, found %d values", len(l))
				good = false
				continue
			}
			m = SecretMount{Source: l[0], Target: l[1]}
		case mapNode:
			for j, k := range e.keys {
				t, ok := scalarText(c, field+"."+k, e.vals[j])
				if !ok {
					good = false
					continue
				}
				switch k {
				case "source", "src":
					m.Source = t
				case "target", "dst":
					m.Target = t
				case "env":
					m.Env = t
				default:
					c.add(e.vals[j].line, field, "unknown field %q; expected source, and target or env", k)
					good = false
				}
			}
		default:
			c.add(e.line, field, "expected a [source, target] pair or a {source, env} mapping, found %s", e.describe())
			good = false
			continue
		}
		out = append(out, m)
	}
	return out, good
}

func decodeBuilderOptions(c *collector, key string, v *node, s *Spec) {
	if v.kind == nullNode {
		return
	}
	if v.kind != mapNode {
		c.add(v.line, key, "expected a mapping, found %s", v.describe())
		return
	}
	s.BuilderOptions = map[string]string{}
	for i, k := range v.keys {
		if e := v.vals[i]; e.kind == scalarNode {
			s.BuilderOptions[k] = e.value
		} else {
			s.BuilderOptions[k] = e.describe()
		}
	}
}

// closest returns the candidate nearest to s by edit distance, if it is
// near enough to be a likely typo.
func closest(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 {
		a = a[:64]
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// recordLines remembers the line of each field path, two levels deep.
func recordLines(lines map[string]int, path string, v *node, depth int) {
	lines[path] = v.line
	if depth > 1 {
		return
	}
	for i, e := range v.vals {
		if v.kind == mapNode {
			recordLines(lines, path+"."+v.keys[i], e, depth+1)
		} else {
			recordLines(lines, fmt.Sprintf("%s[%d]", path, i), e, depth+1)
		}
	}
}
