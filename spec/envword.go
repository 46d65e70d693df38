package spec

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// envWord checks one env value as Dockerfile's ENV instruction reads it
// (BuildKit's shell lexer with the default escape \), in an environment
// where every variable is set and not empty, so that checking never
// fails on what the base image may set. It expands nothing for the
// build: only its error matters. The builder expands values with
// BuildKit's own lexer; a test compares the two on many values.
func envWord(word string) error {
	rs := []rune(word)
	if len(rs) > 0 && rs[0] == '\uFEFF' {
		rs = rs[1:] // text/scanner skips a leading byte order mark
	}
	l := &wordLexer{rs: rs}
	if _, err := l.stopOn(eof, false, false); err != nil {
		return fmt.Errorf("failed to process %q: %w", word, err)
	}
	return nil
}

const eof = -1

// set is the value of every variable.
const set = "x"

type wordLexer struct {
	rs  []rune
	i   int
	raw bool // keep escapes in the result
}

func (l *wordLexer) peek() rune {
	if l.i >= len(l.rs) {
		return eof
	}
	return l.rs[l.i]
}

func (l *wordLexer) next() rune {
	r := l.peek()
	if r != eof {
		l.i++
	}
	return r
}

// stopOn reads up to stop (eof: the end) and returns what it expands to.
func (l *wordLexer) stopOn(stop rune, raw, preservePatternEscapes bool) (string, error) {
	var out strings.Builder
	if raw != l.raw {
		l.raw = raw
		defer func() { l.raw = !raw }()
	}
	for l.peek() != eof {
		ch := l.peek()
		if stop != eof && ch == stop {
			l.next()
			return out.String(), nil
		}
		var s string
		var err error
		switch ch {
		case '$':
			s, err = l.dollar()
		case '<':
			s = l.heredoc()
		case '\'':
			s, err = l.singleQuote(preservePatternEscapes)
		case '"':
			s, err = l.doubleQuote()
		default:
			ch = l.next()
			if ch == '\\' {
				if l.raw {
					out.WriteRune(ch)
				}
				if ch = l.next(); ch == eof {
					break
				}
			}
			out.WriteRune(ch)
			continue
		}
		if err != nil {
			return "", err
		}
		out.WriteString(s)
	}
	if stop != eof {
		return "", fmt.Errorf("unexpected end of statement while looking for matching %s", string(stop))
	}
	return out.String(), nil
}

func (l *wordLexer) heredoc() string {
	l.next()
	if l.peek() != '<' {
		return "<"
	}
	l.next()
	out := "<<"
	for r := l.peek(); r == '\t' || r == '\r' || r == ' '; r = l.peek() {
		out += string(l.next())
	}
	return out
}

func (l *wordLexer) singleQuote(preservePatternEscapes bool) (string, error) {
	var out strings.Builder
	l.next()
	for {
		ch := l.next()
		switch ch {
		case eof:
			return "", errors.New("unexpected end of statement while looking for matching single-quote")
		case '\'':
			return out.String(), nil
		}
		if preservePatternEscapes && ch == '\\' {
			out.WriteRune(ch)
		}
		out.WriteRune(ch)
	}
}

func (l *wordLexer) doubleQuote() (string, error) {
	var out strings.Builder
	l.next()
	for {
		switch l.peek() {
		case eof:
			return "", errors.New("unexpected end of statement while looking for matching double-quote")
		case '"':
			l.next()
			return out.String(), nil
		case '$':
			v, err := l.dollar()
			if err != nil {
				return "", err
			}
			out.WriteString(v)
		default:
			ch := l.next()
			if ch == '\\' {
				switch l.peek() {
				case eof:
					continue
				case '"', '$', '\\':
					if l.raw {
						out.WriteRune(ch)
					}
					ch = l.next()
				default:
					if l.raw {
						out.WriteRune(ch)
					}
				}
			}
			out.WriteRune(ch)
		}
	}
}

func (l *wordLexer) name() string {
	var out strings.Builder
	for l.peek() != eof {
		ch := l.peek()
		if out.Len() == 0 && unicode.IsDigit(ch) {
			for l.peek() != eof && unicode.IsDigit(l.peek()) {
				out.WriteRune(l.next())
			}
			return out.String()
		}
		if out.Len() == 0 && strings.ContainsRune("@*#?-$!0", ch) {
			return string(l.next())
		}
		if !unicode.IsLetter(ch) && !unicode.IsDigit(ch) && ch != '_' {
			break
		}
		out.WriteRune(l.next())
	}
	return out.String()
}

func (l *wordLexer) dollar() (string, error) {
	l.next()
	if l.peek() != '{' {
		if l.name() == "" {
			return "$", nil
		}
		return set, nil
	}
	l.next()
	switch l.peek() {
	case eof:
		return "", errors.New("syntax error: missing '}'")
	case '{', '}', ':':
		return "", errors.New("syntax error: bad substitution")
	}
	l.name()
	ch := l.next()
	chs := string(ch)
	switch ch {
	case '}':
		return set, nil
	case ':', '+', '-', '?', '#', '%':
		nullIsUnset := ch == ':'
		if nullIsUnset {
			ch = l.next()
			chs += string(ch)
		}
		raw := ch == '#' || ch == '%'
		if nullIsUnset && raw {
			return "", fmt.Errorf("unsupported modifier (%s) in substitution", chs)
		}
		word, err := l.stopOn('}', raw, raw)
		if err != nil {
			if l.peek() == eof {
				return "", errors.New("syntax error: missing '}'")
			}
			return "", err
		}
		switch ch {
		case '-', '?':
			return set, nil
		case '+':
			return word, nil
		case '%', '#':
			greedy := len(word) > 0 && word[0] == byte(ch)
			if greedy {
				word = word[1:]
			}
			if ch == '%' {
				word = reversePattern(word)
			}
			if _, err := shellPattern(word, greedy, true); err != nil {
				return "", fmt.Errorf("invalid pattern (%s) in substitution: %s", word, err)
			}
			return set, nil
		}
		return "", fmt.Errorf("unsupported modifier (%s) in substitution", chs)
	case '/':
		all := l.peek() == '/'
		if all {
			l.next()
		}
		pattern, err := l.stopOn('/', true, true)
		if err != nil {
			if l.peek() == eof {
				return "", errors.New("syntax error: missing '/' in ${}")
			}
			return "", err
		}
		replacement, err := l.stopOn('}', true, false)
		if err != nil {
			if l.peek() == eof {
				return "", errors.New("syntax error: missing '}'")
			}
			return "", err
		}
		re, err := shellPattern(pattern, true, false)
		if err != nil {
			return "", fmt.Errorf("invalid pattern (%s) in substitution: %s", pattern, err)
		}
		if all {
			return re.ReplaceAllString(set, replacement), nil
		}
		if idx := re.FindStringIndex(set); idx != nil {
			return set[:idx[0]] + replacement + set[idx[1]:], nil
		}
		return set, nil
	}
	return "", fmt.Errorf("unsupported modifier (%s) in substitution", chs)
}

// shellPattern converts a shell wildcard pattern (? one character, * the
// shortest or, greedy, the longest string) to a regular expression, as
// Dockerfile's ${var#pattern} reads it.
func shellPattern(pattern string, greedy, anchored bool) (*regexp.Regexp, error) {
	var out strings.Builder
	if anchored {
		out.WriteByte('^')
	}
	star := ".*?"
	if greedy {
		star = ".*"
	}
	rs := []rune(pattern)
	if len(rs) > 0 && rs[0] == '\uFEFF' {
		rs = rs[1:]
	}
	for i := 0; i < len(rs); i++ {
		tok := rs[i]
		switch tok {
		case '*':
			out.WriteString(star)
			continue
		case '?':
			out.WriteByte('.')
			continue
		case '\\':
			if i+1 < len(rs) && (rs[i+1] == '}' || rs[i+1] == '/') {
				continue
			}
			out.WriteRune('\\')
			i++
			if i >= len(rs) {
				return nil, fmt.Errorf("invalid escape '\\%c'", rune(eof))
			}
			if tok = rs[i]; tok != '*' && tok != '?' && tok != '\\' {
				return nil, fmt.Errorf("invalid escape '\\%c'", tok)
			}
		case '[', ']', '{', '}', '.', '+', '(', ')', '|', '^', '$':
			out.WriteByte('\\')
		}
		out.WriteRune(tok)
	}
	return regexp.Compile(out.String())
}

// reversePattern reverses a pattern, keeping each escape before the
// character it escapes.
func reversePattern(pattern string) string {
	rs := []rune(pattern)
	out := make([]rune, len(rs))
	last := len(rs) - 1
	for i := 0; i <= last; {
		o := last - i
		if rs[i] == '\\' && i != last {
			out[o-1], out[o] = rs[i], rs[i+1]
			i += 2
		} else {
			out[o] = rs[i]
			i++
		}
	}
	return string(out)
}
