package spec

// Closest returns the candidate nearest to s by edit distance when it is
// near enough to be a likely typo, else "". The CLI suggests settings with
// it the way unknown spec fields are answered.
func Closest(s string, candidates []string) string { return closest(s, candidates) }
