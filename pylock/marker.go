package pylock

import (
	"fmt"
	"strings"
)

// Env is the environment markers are evaluated in. A variable that is
// absent from Vars is unknown: a comparison with it is neither true nor
// false, and is kept for pip to evaluate in the image.
type Env struct {
	// Vars are the PEP 508 marker variables (python_version, sys_platform,
	// platform_machine, ...) whose values are known.
	Vars map[string]string
	// Extras are the active extras: the value of `extra` (PEP 508) and the
	// set `extras` (PEP 751).
	Extras []string
	// Groups are the active dependency groups (PEP 751's
	// `dependency_groups`).
	Groups []string
}

// truth is a three-valued result: a marker whose variables are not all
// known may be neither true nor false.
type truth int

const (
	unknown truth = iota
	isFalse
	isTrue
)

// markerExpr is a parsed environment marker.
type markerExpr struct {
	op          string // "and", "or", or "" for a comparison
	left, right *markerExpr
	// comparison: l OP r, each a variable name or a quoted string
	l, cmp, r  string
	lVar, rVar bool
}

// markerError is a marker that does not parse.
type markerError struct{ marker, msg string }

func (e *markerError) Error() string { return fmt.Sprintf("marker %q: %s", e.marker, e.msg) }

type markerToken struct {
	text string
	str  bool // a quoted string (text without its quotes)
}

func tokenizeMarker(m string) ([]markerToken, error) {
	var toks []markerToken
	for i := 0; i < len(m); {
		c := m[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')':
			toks = append(toks, markerToken{text: string(c)})
			i++
		case c == '\'' || c == '"':
			end := strings.IndexByte(m[i+1:], c)
			if end < 0 {
				return nil, &markerError{m, "unterminated string"}
			}
			toks = append(toks, markerToken{text: m[i+1 : i+1+end], str: true})
			i += end + 2
		case strings.IndexByte("<>=!~", c) >= 0:
			j := i
			for j < len(m) && strings.IndexByte("<>=!~", m[j]) >= 0 {
				j++
			}
			toks = append(toks, markerToken{text: m[i:j]})
			i = j
		case c == '_' || c == '.' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'):
			j := i
			for j < len(m) && (m[j] == '_' || m[j] == '.' || (m[j] >= 'a' && m[j] <= 'z') || (m[j] >= 'A' && m[j] <= 'Z') || (m[j] >= '0' && m[j] <= '9')) {
				j++
			}
			toks = append(toks, markerToken{text: m[i:j]})
			i = j
		default:
			return nil, &markerError{m, fmt.Sprintf("unexpected %q", c)}
		}
	}
	return toks, nil
}

// markerVars are the variables PEP 508 and PEP 751 define.
var markerVars = map[string]bool{
	"os_name": true, "sys_platform": true, "platform_machine": true, "platform_python_implementation": true,
	"platform_release": true, "platform_system": true, "platform_version": true, "python_version": true,
	"python_full_version": true, "implementation_name": true, "implementation_version": true, "extra": true,
	"extras": true, "dependency_groups": true,
	// Old spellings setuptools still accepts.
	"os.name": true, "sys.platform": true, "platform.version": true, "platform.machine": true,
	"platform.python_implementation": true, "python_implementation": true,
}

var markerOps = map[string]bool{"<": true, "<=": true, "==": true, "!=": true, ">=": true, ">": true, "~=": true, "===": true}

type markerParser struct {
	src  string
	toks []markerToken
	pos  int
}

// parseMarker parses a PEP 508 environment marker.
func parseMarker(m string) (*markerExpr, error) {
	toks, err := tokenizeMarker(m)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, &markerError{m, "empty"}
	}
	p := &markerParser{src: m, toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, &markerError{m, fmt.Sprintf("unexpected %q", p.toks[p.pos].text)}
	}
	return e, nil
}

func (p *markerParser) peek(word string) bool {
	return p.pos < len(p.toks) && !p.toks[p.pos].str && p.toks[p.pos].text == word
}

func (p *markerParser) or() (*markerExpr, error) {
	l, err := p.and()
	for err == nil && p.peek("or") {
		p.pos++
		var r *markerExpr
		if r, err = p.and(); err == nil {
			l = &markerExpr{op: "or", left: l, right: r}
		}
	}
	return l, err
}

func (p *markerParser) and() (*markerExpr, error) {
	l, err := p.atom()
	for err == nil && p.peek("and") {
		p.pos++
		var r *markerExpr
		if r, err = p.atom(); err == nil {
			l = &markerExpr{op: "and", left: l, right: r}
		}
	}
	return l, err
}

func (p *markerParser) atom() (*markerExpr, error) {
	if p.peek("(") {
		p.pos++
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.peek(")") {
			return nil, &markerError{p.src, "missing )"}
		}
		p.pos++
		return e, nil
	}
	l, lVar, err := p.value()
	if err != nil {
		return nil, err
	}
	if p.pos >= len(p.toks) {
		return nil, &markerError{p.src, "expected an operator after " + l}
	}
	op := p.toks[p.pos]
	switch {
	case op.str:
		return nil, &markerError{p.src, fmt.Sprintf("expected an operator before %q", op.text)}
	case markerOps[op.text] || op.text == "in":
		p.pos++
	case op.text == "not":
		p.pos++
		if !p.peek("in") {
			return nil, &markerError{p.src, "expected in after not"}
		}
		p.pos++
		op.text = "not in"
	default:
		return nil, &markerError{p.src, fmt.Sprintf("unknown operator %q", op.text)}
	}
	r, rVar, err := p.value()
	if err != nil {
		return nil, err
	}
	return &markerExpr{l: l, cmp: op.text, r: r, lVar: lVar, rVar: rVar}, nil
}

func (p *markerParser) value() (string, bool, error) {
	if p.pos >= len(p.toks) {
		return "", false, &markerError{p.src, "unexpected end"}
	}
	t := p.toks[p.pos]
	p.pos++
	if t.str {
		return t.text, false, nil
	}
	if !markerVars[t.text] {
		return "", false, &markerError{p.src, fmt.Sprintf("unknown variable %q", t.text)}
	}
	return strings.ReplaceAll(t.text, ".", "_"), true, nil
}

// versionVars are compared as PEP 440 versions.
var versionVars = map[string]bool{"python_version": true, "python_full_version": true, "implementation_version": true}

// eval evaluates e in env: true, false, or unknown with the residual
// marker (the parts whose variables are unknown) for pip to evaluate.
func (e *markerExpr) eval(env Env) (truth, string) {
	switch e.op {
	case "and", "or":
		lt, lr := e.left.eval(env)
		rt, rr := e.right.eval(env)
		decisive, neutral := isFalse, isTrue
		if e.op == "or" {
			decisive, neutral = isTrue, isFalse
		}
		switch {
		case lt == decisive || rt == decisive:
			return decisive, ""
		case lt == neutral:
			return rt, rr
		case rt == neutral:
			return lt, lr
		}
		return unknown, "(" + lr + ") " + e.op + " (" + rr + ")"
	}
	lv, lok := e.resolve(e.l, e.lVar, env)
	rv, rok := e.resolve(e.r, e.rVar, env)
	// Sets: "x" in extras, "dev" in dependency_groups.
	if e.rVar && (e.r == "extras" || e.r == "dependency_groups") && (e.cmp == "in" || e.cmp == "not in") {
		set := env.Extras
		if e.r == "dependency_groups" {
			set = env.Groups
		}
		in := false
		for _, x := range set {
			if normName(x) == normName(lv) {
				in = true
			}
		}
		return truthOf(in == (e.cmp == "in")), ""
	}
	if e.lVar && e.l == "extra" || e.rVar && e.r == "extra" {
		other := rv
		if e.rVar && e.r == "extra" {
			other = lv
		}
		in := false
		for _, x := range env.Extras {
			if normName(x) == normName(other) {
				in = true
			}
		}
		switch e.cmp {
		case "==":
			return truthOf(in), ""
		case "!=":
			return truthOf(!in), ""
		}
		return isFalse, ""
	}
	if !lok || !rok {
		return unknown, e.text()
	}
	switch e.cmp {
	case "in":
		return truthOf(strings.Contains(rv, lv)), ""
	case "not in":
		return truthOf(!strings.Contains(rv, lv)), ""
	}
	if versionVars[e.l] || versionVars[e.r] {
		if res, ok := versionMatch(lv, e.cmp, rv); ok {
			return truthOf(res), ""
		}
	}
	switch e.cmp {
	case "==", "===":
		return truthOf(lv == rv), ""
	case "!=":
		return truthOf(lv != rv), ""
	case "<":
		return truthOf(lv < rv), ""
	case "<=":
		return truthOf(lv <= rv), ""
	case ">":
		return truthOf(lv > rv), ""
	case ">=":
		return truthOf(lv >= rv), ""
	}
	return unknown, e.text()
}

func (e *markerExpr) resolve(v string, isVar bool, env Env) (string, bool) {
	if !isVar {
		return v, true
	}
	val, ok := env.Vars[v]
	return val, ok
}

// text writes a comparison the way pip reads it.
func (e *markerExpr) text() string {
	side := func(v string, isVar bool) string {
		if isVar {
			return v
		}
		if strings.Contains(v, `"`) {
			return "'" + v + "'"
		}
		return `"` + v + `"`
	}
	return side(e.l, e.lVar) + " " + e.cmp + " " + side(e.r, e.rVar)
}

func truthOf(b bool) truth {
	if b {
		return isTrue
	}
	return isFalse
}

// EvalMarker evaluates a PEP 508 marker in env. It returns whether the
// marker holds; when it depends on variables env does not know, ok is
// true, holds is true, and residual is the part pip must evaluate in the
// image. An empty marker holds.
func EvalMarker(marker string, env Env) (holds bool, residual string, err error) {
	if strings.TrimSpace(marker) == "" {
		return true, "", nil
	}
	e, err := parseMarker(marker)
	if err != nil {
		return false, "", err
	}
	t, r := e.eval(env)
	switch t {
	case isTrue:
		return true, "", nil
	case isFalse:
		return false, "", nil
	}
	return true, r, nil
}
