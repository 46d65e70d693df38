package spec

import (
	"math/rand/v2"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// buildkitWord is what the builder runs: BuildKit's lexer.
func buildkitWord(v string) error {
	_, _, err := shell.NewLex('\\').ProcessWord(v, allSet{})
	return err
}

// allSet is an environment in which every variable is set and not empty.
type allSet struct{}

func (allSet) Get(string) (string, bool) { return "x", true }
func (allSet) Keys() []string            { return nil }

func sameAsBuildKit(t *testing.T, v string) {
	t.Helper()
	want, got := buildkitWord(v), envWord(v)
	switch {
	case (want == nil) != (got == nil):
		t.Errorf("%q: BuildKit says %v, envWord says %v", v, want, got)
	case want != nil && want.Error() != got.Error():
		t.Errorf("%q: BuildKit's message %q, envWord's %q", v, want, got)
	}
}

var envWordCases = []string{
	"", "plain", "a b", "$", "$x", "${x}", "${", "${}", "${:}", "${{x}", "${x", "${x:-d}", "${x:+d}", "${x:?}", "${x?m}",
	"${x#a*}", "${x##a*}", "${x%a}", "${x%%*a}", "${x:#a}", "${x:%a}", "${x/a/b}", "${x//a/b}", "${x/a}", "${x/a/b",
	"${x#\\q}", "${x#a\\}", "${x%\\*}", "${x/\\q/b}", "${x/a\\/b/c}", "${x:x}", "${x.y}", "${#}", "${#x}", "${1}", "${12a}",
	"'a", "\"a", "'a'", "\"a\"", "\"$x\"", "\"${x\"", "a\\", "\"a\\\"", "\"\\$\"", "<<EOF", "<a", "${x:-'a}", "${x:-\"}",
	"${x:-${y}}", "${x:-${y}", "${x#${y}}", "${x#'\\q'}", "${x#\"\\q\"}", "\ufeff${", "${x#\ufeff\\q}", "${x/${y//x/\\q}/}",
	"${x%a\\}", "\x00", "\xff${x}", "${x#[}", "${x#(}", "${x/*/}", "${x//?/}", "${x/", "${x//", "${x:", "${x:-", "$1", "$@x",
}

func TestEnvWordAgreesWithBuildKit(t *testing.T) {
	for _, v := range envWordCases {
		sameAsBuildKit(t, v)
	}
	alphabet := []string{"$", "{", "}", ":", "-", "+", "?", "#", "%", "/", "\\", "'", "\"", "<", "*", "x", "1", "@", " ", "[", "q", "\ufeff"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		n := r.IntN(12)
		b := make([]byte, 0, n*2)
		for range n {
			b = append(b, alphabet[r.IntN(len(alphabet))]...)
		}
		sameAsBuildKit(t, string(b))
	}
}

func FuzzEnvWordAgreesWithBuildKit(f *testing.F) {
	for _, v := range envWordCases {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) { sameAsBuildKit(t, v) })
}
