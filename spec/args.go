package spec

// SplitArgs splits a string such as pip_extra_args into arguments the way a
// POSIX shell splits plain words and quotes, without expansion of any kind.
// It is the splitting the hash and validation use, so a builder that passes
// the result as an argument vector runs exactly what was hashed.
func SplitArgs(s string) ([]string, error) { return splitArgs(s) }
