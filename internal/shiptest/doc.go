// Package shiptest checks what the project ships besides the Go code: the
// image the top-level Dockerfile builds, built with the development
// environment's BuildKit and run there. It has tests only.
package shiptest
