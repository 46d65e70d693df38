package pylock

import (
	"net/url"
	"strings"
)

// tableLines returns, for each [[header]] array-of-tables entry in order,
// the line of its name key (or of the header when it has none), so that
// errors can name the line of a package.
func tableLines(data []byte, header string) []int {
	var out []int
	inEntry := false
	for i, l := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "[["+header+"]]":
			out = append(out, i+1)
			inEntry = true
		case strings.HasPrefix(t, "["):
			inEntry = false
		case inEntry && (strings.HasPrefix(t, "name ") || strings.HasPrefix(t, "name=")):
			out[len(out)-1] = i + 1
			inEntry = false
		}
	}
	return out
}

func lineOf(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}

// urlProblem says what is wrong with an artifact or index URL, or "":
// it must be http(s) and carry no credentials.
func urlProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if err == nil && u.Scheme == "file" {
			return "a file: URL is a local path; a lock for an image must name artifacts by http(s) URL"
		}
		return "expected an http(s) URL"
	}
	if u.User != nil {
		return "must not carry credentials; pass them as pip_secret_mounts or in the configuration"
	}
	return ""
}

// fileOfURL is the last path segment of an artifact URL.
func fileOfURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	p := u.Path
	if i := strings.LastIndex(p, "/"); i >= 0 {
		p = p[i+1:]
	}
	if s, err := url.PathUnescape(p); err == nil {
		return s
	}
	return p
}
