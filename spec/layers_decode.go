package spec

import (
	"fmt"
	"slices"
	"strings"
)

// decodeLayers reads the layers list: each item a mapping with exactly one
// kind (layerKinds), plus pip options beside packages, requirements and
// python_wheels.
func decodeLayers(c *collector, key string, v *node, s *Spec) {
	switch v.kind {
	case nullNode:
		return
	case seqNode:
	default:
		c.add(v.line, key, "expected a list of layers (each a mapping with one of %s), found %s", strings.Join(layerKinds(), ", "), v.describe())
		return
	}
	for i, e := range v.vals {
		field := fmt.Sprintf("%s[%d]", key, i)
		if l, ok := decodeLayer(c, field, e); ok {
			s.Layers = append(s.Layers, l)
		}
	}
}

func decodeLayer(c *collector, field string, v *node) (Layer, bool) {
	var l Layer
	if v.kind != mapNode {
		c.add(v.line, field, "expected a mapping with one of %s, found %s", strings.Join(layerKinds(), ", "), v.describe())
		return l, false
	}
	var kinds, opts []string
	ok := true
	known := append(layerKinds(), pipOptionNames()...)
	for i, k := range v.keys {
		e, f := v.vals[i], field+"."+k
		switch {
		case slices.Contains(layerKinds(), k):
			kinds = append(kinds, k)
			ok = decodeLayerKind(c, f, LayerKind(k), e, &l) && ok
		case slices.Contains(pipOptionNames(), k):
			opts = append(opts, k)
			ok = decodePipOption(c, f, k, e, &l.Pip) && ok
		default:
			msg := fmt.Sprintf("unknown field %q in a layer", k)
			if near := closest(k, known); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			}
			c.add(e.line, field, "%s (a layer holds one of %s)", msg, strings.Join(layerKinds(), ", "))
			ok = false
		}
	}
	switch len(kinds) {
	case 0:
		c.add(v.line, field, "names no layer kind; expected exactly one of %s", strings.Join(layerKinds(), ", "))
		return l, false
	case 1:
		l.Kind = LayerKind(kinds[0])
	default:
		c.add(v.line, field, "holds %s: a layer holds exactly one kind; split it into one layer each, in the order they should be built", strings.Join(kinds, " and "))
		return l, false
	}
	if len(opts) > 0 && l.Kind != LayerPackages && l.Kind != LayerRequirements && l.Kind != LayerWheels {
		c.add(v.line, field, "%s goes with packages, requirements or python_wheels, not with %s", strings.Join(opts, ", "), l.Kind)
		return l, false
	}
	return l, ok
}

func decodeLayerKind(c *collector, f string, k LayerKind, e *node, l *Layer) bool {
	var ok bool
	switch k {
	case LayerApt:
		l.AptPackages, ok = stringList(c, f, e)
	case LayerPackages:
		l.Packages, ok = stringList(c, f, e)
	case LayerCommands:
		l.Commands, ok = stringList(c, f, e)
	case LayerRequirements:
		l.Requirements, ok = scalarText(c, f, e)
	case LayerWheels:
		l.PythonWheels, ok = scalarText(c, f, e)
	case LayerWorkdir:
		l.Workdir, ok = scalarText(c, f, e)
	case LayerEnv:
		ok = decodeLayerEnv(c, f, e, l)
	case LayerCopy:
		l.Copy, ok = decodeCopyPairs(c, f, e)
	case LayerUVProject:
		l.UVProject, ok = decodeUVProject(c, f, e)
	}
	return ok
}

func decodeLayerEnv(c *collector, f string, e *node, l *Layer) bool {
	if e.kind != mapNode {
		c.add(e.line, f, "expected a mapping of names to strings, found %s", e.describe())
		return false
	}
	l.Env = make(map[string]string, len(e.keys))
	ok := true
	for i, k := range e.keys {
		t, good := scalarText(c, f+"."+k, e.vals[i])
		ok = ok && good
		l.Env[k] = t
	}
	return ok
}

// decodeCopyPairs reads copy: [{src: a, dst: /b}, ...] or [[a, /b], ...].
func decodeCopyPairs(c *collector, f string, e *node) ([]CopyPair, bool) {
	if e.kind != seqNode {
		c.add(e.line, f, "expected a list of {src, dst} pairs, found %s", e.describe())
		return nil, false
	}
	var out []CopyPair
	ok := true
	for i, item := range e.vals {
		field := fmt.Sprintf("%s[%d]", f, i)
		var p CopyPair
		switch item.kind {
		case seqNode:
			l, good := stringList(c, field, item)
			if good && len(l) != 2 {
				c.add(item.line, field, "expected a [src, dst] pair, found %d values", len(l))
				good = false
			}
			if !good {
				ok = false
				continue
			}
			p = CopyPair{Src: l[0], Dst: l[1]}
		case mapNode:
			for j, k := range item.keys {
				t, good := scalarText(c, field+"."+k, item.vals[j])
				if !good {
					ok = false
					continue
				}
				switch k {
				case "src":
					p.Src = t
				case "dst":
					p.Dst = t
				default:
					msg := fmt.Sprintf("unknown field %q; expected src and dst", k)
					if near := closest(k, []string{"src", "dst"}); near != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", near)
					}
					c.add(item.vals[j].line, field, "%s", msg)
					ok = false
				}
			}
		default:
			c.add(item.line, field, "expected a {src, dst} pair, found %s", item.describe())
			ok = false
			continue
		}
		out = append(out, p)
	}
	return out, ok
}

func decodeUVProject(c *collector, f string, e *node) (*UVProject, bool) {
	if e.kind != mapNode {
		c.add(e.line, f, "expected {pyproject: PATH, uvlock: PATH}, found %s", e.describe())
		return nil, false
	}
	u := &UVProject{}
	ok := true
	for i, k := range e.keys {
		t, good := scalarText(c, f+"."+k, e.vals[i])
		if !good {
			ok = false
			continue
		}
		switch k {
		case "pyproject":
			u.Pyproject = t
		case "uvlock":
			u.UVLock = t
		default:
			msg := fmt.Sprintf("unknown field %q; expected pyproject and uvlock", k)
			if near := closest(k, []string{"pyproject", "uvlock"}); near != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", near)
			}
			c.add(e.vals[i].line, f, "%s", msg)
			ok = false
		}
	}
	return u, ok
}

func decodePipOption(c *collector, f, k string, e *node, p *PipOptions) bool {
	var ok bool
	switch k {
	case "pip_index":
		p.Index, ok = scalarText(c, f, e)
	case "pip_extra_index_url":
		p.ExtraIndexURL, ok = stringList(c, f, e)
	case "pip_extra_args":
		p.ExtraArgs, ok = scalarText(c, f, e)
	case "pre":
		p.Pre, ok = boolValue(c, f, e)
	case "allow_changes":
		p.AllowChanges, ok = boolValue(c, f, e)
	case "pip_secret_mounts":
		p.SecretMounts, ok = secretMountList(c, f, e)
	}
	return ok
}

// boolValue reads true or false (YAML, JSON and TOML booleans, or the
// strings "true" and "false").
func boolValue(c *collector, f string, e *node) (bool, bool) {
	if e.kind == scalarNode {
		switch strings.ToLower(e.value) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	if e.kind == nullNode {
		return false, true
	}
	c.add(e.line, f, "expected true or false, found %s", e.describe())
	return false, false
}
