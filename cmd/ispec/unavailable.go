package main

// unavailable reports whether err means a registry or BuildKit could not
// be used (exit code 3). Later commands add their error types here.
func unavailable(err error) bool {
	return false
}
