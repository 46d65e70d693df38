package spec

import (
	"strconv"
	"strings"
)

// CheckUser returns what is wrong with a user field's value ("" when it
// is valid): a user name as useradd takes one (lowercase letters, digits,
// '_', '.', '-', starting with a letter or '_', at most 32 characters), or
// uid[:gid] with decimal ids below 2^31.
func CheckUser(u string) string {
	if u == "" {
		return "is empty: a user name or uid[:gid]"
	}
	if c := u[0]; c >= '0' && c <= '9' {
		uid, gid, hasGID := strings.Cut(u, ":")
		if !isID(uid) || (hasGID && !isID(gid)) {
			return "must be a user name or uid[:gid] with decimal ids from 0 to 2147483647"
		}
		return ""
	}
	if !isUserName(u) {
		return "must be a user name (lowercase letters, digits, '_', '.', '-', starting with a letter or '_', at most 32 characters) or uid[:gid]"
	}
	return ""
}

func isUserName(u string) bool {
	if len(u) > 32 || u == "" {
		return false
	}
	for i, c := range u {
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func isID(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(s, 10, 31)
	return s != "" && err == nil
}
