package spec

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// canonical encodes a value built from map[string]any, []any, []string,
// map[string]string, string and bool as canonical JSON: no whitespace,
// object keys sorted by their bytes, strings escaped minimally (only ", \
// and control characters below U+0020; \b \f \n \r \t in short form,
// others as \u00XX lowercase hex). A byte that is not part of valid UTF-8
// (only file names and symlink targets can hold one) is written as \udcXX,
// XX its value in lowercase hex: the lone surrogate Python's surrogateescape
// gives it, which valid UTF-8 never produces, so every byte string has its
// own encoding. docs/identity.md describes it.
func canonical(v any) []byte {
	var b strings.Builder
	writeCanonical(&b, v)
	return []byte(b.String())
}

func writeCanonical(b *strings.Builder, v any) {
	switch t := v.(type) {
	case string:
		writeString(b, t)
	case bool:
		fmt.Fprint(b, t)
	case []string:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = e
		}
		writeCanonical(b, l)
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, e)
		}
		b.WriteByte(']')
	case map[string]string:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = e
		}
		writeCanonical(b, m)
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeCanonical(b, t[k])
		}
		b.WriteByte('}')
	default:
		panic(fmt.Sprintf("spec: canonical encoding of %T", v))
	}
}

func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(b, `\udc%02x`, s[i])
				continue
			}
		}
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
