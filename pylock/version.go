package pylock

import (
	"strconv"
	"strings"
)

// version is a PEP 440 version, enough of it to compare the versions that
// environment markers hold (python_version, python_full_version).
type version struct {
	epoch   int
	release []int
	pre     [2]int // kind (-1 none... see parse), number
	post    int    // -1 without a post segment
	dev     int    // -1 without a dev segment
}

// preKinds orders the pre-release kinds; a release without one sorts after
// every pre-release.
var preKinds = map[string]int{"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}

const noPre = 3

// parseVersion reads a PEP 440 version; ok is false when s is not one.
func parseVersion(s string) (v version, ok bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i] // local versions compare as their public part here
	}
	v.post, v.dev, v.pre = -1, -1, [2]int{noPre, 0}
	if e, rest, found := strings.Cut(s, "!"); found {
		n, err := strconv.Atoi(e)
		if err != nil {
			return v, false
		}
		v.epoch, s = n, rest
	}
	i := 0
	for {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			return v, false
		}
		n, _ := strconv.Atoi(s[i:j])
		v.release = append(v.release, n)
		i = j
		if i < len(s) && s[i] == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			i++
			continue
		}
		break
	}
	rest := s[i:]
	for rest != "" {
		rest = strings.TrimLeft(rest, ".-_")
		word := 0
		for word < len(rest) && rest[word] >= 'a' && rest[word] <= 'z' {
			word++
		}
		w := rest[:word]
		rest = rest[word:]
		num := 0
		for num < len(rest) && rest[num] >= '0' && rest[num] <= '9' {
			num++
		}
		n := 0
		if num > 0 {
			n, _ = strconv.Atoi(rest[:num])
		}
		rest = rest[num:]
		switch {
		case w == "post" || w == "rev" || w == "r":
			v.post = n
		case w == "dev":
			v.dev = n
		case w == "":
			if num == 0 {
				return v, false
			}
			v.post = n // 1.0-1
		default:
			k, known := preKinds[w]
			if !known {
				return v, false
			}
			v.pre = [2]int{k, n}
		}
	}
	return v, true
}

// compare returns -1, 0 or 1 as a is older than, equal to or newer than b.
func (a version) compare(b version) int {
	if c := cmpInt(a.epoch, b.epoch); c != 0 {
		return c
	}
	n := max(len(a.release), len(b.release))
	for i := 0; i < n; i++ {
		if c := cmpInt(at(a.release, i), at(b.release, i)); c != 0 {
			return c
		}
	}
	// A dev release of a final version sorts before its pre-releases.
	ap, bp := a.pre, b.pre
	if ap[0] == noPre && a.post < 0 && a.dev >= 0 {
		ap = [2]int{-1, 0}
	}
	if bp[0] == noPre && b.post < 0 && b.dev >= 0 {
		bp = [2]int{-1, 0}
	}
	if c := cmpInt(ap[0], bp[0]); c != 0 {
		return c
	}
	if c := cmpInt(ap[1], bp[1]); c != 0 {
		return c
	}
	if c := cmpInt(a.post, b.post); c != 0 {
		return c
	}
	ad, bd := a.dev, b.dev
	if ad < 0 {
		ad = int(^uint(0) >> 1)
	}
	if bd < 0 {
		bd = int(^uint(0) >> 1)
	}
	return cmpInt(ad, bd)
}

func at(r []int, i int) int {
	if i < len(r) {
		return r[i]
	}
	return 0
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// versionMatch evaluates "have OP want" as a PEP 440 version specifier
// clause; ok is false when either side is not a version.
func versionMatch(have, op, want string) (result, ok bool) {
	if op == "===" {
		return strings.TrimSpace(have) == strings.TrimSpace(want), true
	}
	if (op == "==" || op == "!=") && strings.HasSuffix(want, ".*") {
		h, ok1 := parseVersion(have)
		w, ok2 := parseVersion(strings.TrimSuffix(want, ".*"))
		if !ok1 || !ok2 {
			return false, false
		}
		match := h.epoch == w.epoch
		for i := range w.release {
			if at(h.release, i) != w.release[i] {
				match = false
			}
		}
		return match == (op == "=="), true
	}
	h, ok1 := parseVersion(have)
	w, ok2 := parseVersion(want)
	if !ok1 || !ok2 {
		return false, false
	}
	c := h.compare(w)
	switch op {
	case "==":
		return c == 0, true
	case "!=":
		return c != 0, true
	case "<":
		return c < 0, true
	case "<=":
		return c <= 0, true
	case ">":
		return c > 0, true
	case ">=":
		return c >= 0, true
	case "~=":
		if len(w.release) < 2 || c < 0 {
			return false, true
		}
		for i := 0; i < len(w.release)-1; i++ {
			if at(h.release, i) != w.release[i] {
				return false, true
			}
		}
		return true, true
	}
	return false, false
}
