package spec

// checkEnvValues checks that every env value is a word the Dockerfile ENV
// instruction accepts (balanced quotes, well-formed ${...}), since the
// builder expands values as ENV does (see envWord).
func checkEnvValues(c *collector, env map[string]string) {
	for _, k := range sortedKeys(env) {
		if err := envWord(env[k]); err != nil {
			c.add(0, "env."+k, "%q is not a value Dockerfile ENV accepts: %v (values are expanded as ENV does: write \\$ for a literal $, quote or escape quotes)", env[k], err)
		}
	}
}
