package spec

import (
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// allSet is an environment in which every variable is set and not empty,
// so that checking a value's syntax never fails on what the base image
// may set.
type allSet struct{}

func (allSet) Get(string) (string, bool) { return "x", true }
func (allSet) Keys() []string            { return nil }

// checkEnvValues checks that every env value is a word the Dockerfile ENV
// instruction accepts (balanced quotes, well-formed ${...}), since the
// builder expands values as ENV does.
func checkEnvValues(c *collector, env map[string]string) {
	for _, k := range sortedKeys(env) {
		if _, _, err := shell.NewLex('\\').ProcessWord(env[k], allSet{}); err != nil {
			c.add(0, "env."+k, "%q is not a value Dockerfile ENV accepts: %v (values are expanded as ENV does: write \\$ for a literal $, quote or escape quotes)", env[k], err)
		}
	}
}
