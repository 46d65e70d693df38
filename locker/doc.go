// Package locker computes what `ispec lock` writes beside a spec: the
// base image's digest per platform (or a nested parent's tag), and every
// Python distribution pip's resolver picks for the spec's requirements on
// that base, per platform, inside BuildKit; and it names what drifted
// between a lock and a fresh resolution. The CLI (with its registry client
// and its BuildKit) and the server (with its pool and its own pip netrc)
// call it the same way, so a lock made through the service is the lock
// made locally.
package locker
