package spec

import (
	"errors"
	"fmt"
	"strings"
)

// Floating is a Python requirement whose installed bytes the spec does
// not pin: pip resolves it, and what it depends on, when the image is
// built, so the same tag may stand for other distributions on another
// day. A requirement pinned by a lock file (uv.lock, poetry.lock,
// pylock.toml) or by version and --hash in a requirements file does not
// float.
type Floating struct {
	// File is the spec or requirements file that names it, as shown.
	File string
	// Line is its 1-based line, 0 when unknown.
	Line int
	// Field is "packages[i]" or "requirements".
	Field string
	// Requirement is the requirement as written.
	Requirement string
	// Why says what is left open.
	Why string
}

// String formats f as file:line: field: "requirement" why.
func (f Floating) String() string {
	e := FieldError{File: f.File, Line: f.Line, Field: f.Field, Msg: fmt.Sprintf("%q %s", f.Requirement, f.Why)}
	return e.Error()
}

// Floating lists the Python requirements of img and of its nested base
// specs that float, parents first.
func (img *Image) Floating() []Floating {
	if img == nil {
		return nil
	}
	return append(img.Parent.Floating(), img.floating...)
}

// floatingWhy says why a requirement without a hash floats.
func floatingWhy(req string) string {
	if strings.Contains(req, "@") {
		return "is a direct reference without a hash: its bytes and its dependencies are whatever the URL serves when the image is built"
	}
	if m := pepVersionRe.FindString(strings.TrimSpace(req[len(pepNameRe.FindString(strings.TrimSpace(req))):])); strings.Contains(m, "==") && !strings.Contains(m, "*") {
		return "is pinned by version, not by hash: its artifact and its dependencies are chosen when the image is built"
	}
	return "is not pinned: pip chooses its version (and its dependencies) when the image is built"
}

// floatingPackages lists the written packages of s, which always float.
func floatingPackages(file string, s *Spec) []Floating {
	var out []Floating
	for i, p := range s.Packages {
		field := fmt.Sprintf("packages[%d]", i)
		out = append(out, Floating{File: file, Line: s.lines[field], Field: field, Requirement: strings.TrimSpace(p), Why: floatingWhy(p)})
	}
	return out
}

// floatingLine reports whether a requirements file's line names a
// requirement that floats: one without --hash, or not pinned with ==.
func floatingLine(text string) (req string, floats bool) {
	tokens := strings.Split(text, " ")
	k := 0
	for k < len(tokens) && !strings.HasPrefix(tokens[k], "-") {
		k++
	}
	req = strings.TrimSpace(strings.Join(tokens[:k], " "))
	if req == "" {
		return "", false
	}
	hashed := strings.Contains(text, "--hash")
	pinned := strings.Contains(req, "@") || strings.Contains(pepVersionRe.FindString(strings.TrimSpace(req[len(pepNameRe.FindString(req)):])), "==")
	return req, !(hashed && pinned)
}

// ErrFloating is matched (errors.Is) by the error LockedError returns,
// as is ErrInvalid.
var ErrFloating = errors.New("Python requirements float")

// LockedError returns nil when no Python requirement of img (or of its
// nested base specs) floats, else an invalid-spec error naming each one,
// for builds that must install only pinned distributions (build
// --locked).
func (img *Image) LockedError() error {
	fl := img.Floating()
	if len(fl) == 0 {
		return nil
	}
	errs := make(Errors, len(fl))
	for i, f := range fl {
		errs[i] = &FieldError{File: f.File, Line: f.Line, Field: f.Field,
			Msg: fmt.Sprintf("%q %s; locked builds install only pinned Python requirements: name a lock file (uv.lock, poetry.lock or pylock.toml) in requirements, or pin each requirement with == and --hash", f.Requirement, f.Why)}
	}
	return &lockedError{errs}
}

type lockedError struct{ errs Errors }

func (e *lockedError) Error() string { return e.errs.Error() }

func (e *lockedError) Unwrap() []error { return []error{e.errs, ErrFloating} }
