package spec

import "strings"

var (
	pepSepRe    = lazyRe(`[-_.]+`)
	pepClauseRe = lazyRe(`^(~=|===|==|!=|<=|>=|<|>)\s*(\S+)$`)
)

// normalizeRequirement writes a valid PEP 508 requirement in one spelling,
// the form packaging's Requirement prints, so that equivalent requirements
// hash alike:
//
//   - the distribution name and extras in PEP 503 form (lowercase, each run
//     of "-", "_" and "." as one "-"); extras sorted and de-duplicated,
//     written [a,b];
//   - version clauses without spaces (== 1 is ==1), the version lowercased
//     (except after ===), de-duplicated and sorted by their bytes, joined
//     by commas, parentheses dropped: numpy>=1,<2 is numpy<2,>=1;
//   - a direct reference written "name @ URL";
//   - a marker after "; " (" ; " after a URL), its tokens separated by one
//     space, none inside parentheses, strings in double quotes unless
//     they hold one.
//
// A requirement it cannot take apart is only trimmed.
func normalizeRequirement(r string) string {
	r = strings.TrimSpace(r)
	name := pepNameRe.FindString(r)
	if name == "" {
		return r
	}
	var b strings.Builder
	b.WriteString(pep503(name))
	rest := strings.TrimSpace(r[len(name):])
	if ex := pepExtrasRe.FindString(rest); ex != "" {
		rest = strings.TrimSpace(rest[len(ex):])
		b.WriteString(normalizeExtras(ex))
	}
	url := false
	if u := pepURLRe.FindString(rest); u != "" {
		rest = strings.TrimSpace(rest[len(u):])
		b.WriteString(" @ ")
		b.WriteString(strings.TrimSpace(strings.TrimPrefix(u, "@")))
		url = true
	} else if v := pepVersionRe.FindString(rest); v != "" {
		spec, ok := normalizeSpecifiers(v)
		if !ok {
			return r
		}
		rest = strings.TrimSpace(rest[len(v):])
		b.WriteString(spec)
	}
	if rest == "" {
		return b.String()
	}
	if !strings.HasPrefix(rest, ";") {
		return r
	}
	marker, ok := normalizeMarker(rest[1:])
	if !ok {
		return r
	}
	if url {
		b.WriteString(" ")
	}
	b.WriteString("; ")
	b.WriteString(marker)
	return b.String()
}

// pep503 is a distribution or extra name in PEP 503 normalized form.
func pep503(n string) string { return strings.ToLower(pepSepRe.ReplaceAllString(n, "-")) }

func normalizeExtras(ex string) string {
	parts := strings.Split(strings.Trim(ex, "[] \t"), ",")
	return "[" + strings.Join(sortedSet(parts, func(e string) string { return pep503(strings.TrimSpace(e)) }), ",") + "]"
}

// normalizeSpecifiers writes a version specifier set as sorted clauses.
func normalizeSpecifiers(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "(") {
		if !strings.HasSuffix(v, ")") {
			return "", false
		}
		v = v[1 : len(v)-1]
	}
	var clauses []string
	for _, c := range strings.Split(v, ",") {
		m := pepClauseRe.FindStringSubmatch(strings.TrimSpace(c))
		if m == nil {
			return "", false
		}
		ver := m[2]
		if m[1] != "===" {
			ver = strings.ToLower(ver)
		}
		clauses = append(clauses, m[1]+ver)
	}
	return strings.Join(sortedSet(clauses, func(s string) string { return s }), ","), true
}

// normalizeMarker re-spaces a PEP 508 environment marker.
func normalizeMarker(m string) (string, bool) {
	var toks []string
	for i := 0; i < len(m); {
		ch := m[i]
		switch {
		case ch == ' ' || ch == '\t':
			i++
		case ch == '(' || ch == ')':
			toks = append(toks, string(ch))
			i++
		case ch == '\'' || ch == '"':
			end := strings.IndexByte(m[i+1:], ch)
			if end < 0 {
				return "", false
			}
			body := m[i+1 : i+1+end]
			if strings.Contains(body, `"`) {
				toks = append(toks, "'"+body+"'")
			} else {
				toks = append(toks, `"`+body+`"`)
			}
			i += end + 2
		case strings.IndexByte("<>=!~", ch) >= 0:
			j := i
			for j < len(m) && strings.IndexByte("<>=!~", m[j]) >= 0 {
				j++
			}
			toks = append(toks, m[i:j])
			i = j
		case isMarkerWordByte(ch):
			j := i
			for j < len(m) && isMarkerWordByte(m[j]) {
				j++
			}
			toks = append(toks, m[i:j])
			i = j
		default:
			return "", false
		}
	}
	if len(toks) == 0 {
		return "", false
	}
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && toks[i-1] != "(" && t != ")" {
			b.WriteByte(' ')
		}
		b.WriteString(t)
	}
	return b.String(), true
}

func isMarkerWordByte(c byte) bool {
	return c == '_' || c == '.' || c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
