package spec

import "testing"

func TestRepository(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000/a/b:tag":       "127.0.0.1:5000/a/b",
		"docker.io/library/python:3":   "docker.io/library/python",
		"127.0.0.1:5000/a@sha256:abcd": "127.0.0.1:5000/a",
		"127.0.0.1:5000/a":             "127.0.0.1:5000/a",
	} {
		if got := Repository(in); got != want {
			t.Errorf("Repository(%q) = %q, want %q", in, got, want)
		}
	}
}
