// Package cache answers whether an image tag already exists, so that ispec
// never builds the same image twice.
//
// A [Remote] asks the registry (a manifest HEAD, with credentials from the
// Docker config) and gives one of three answers: [Exists] with the manifest
// digest, [Absent] when the registry said the tag or repository is not there,
// and [Unknown] (an [*UnknownError]) for everything else: authentication
// failures, server errors after retries, timeouts, DNS, malformed answers.
// Unknown is never treated as exists.
//
// An [Index] remembers positive answers on disk; [Cached] consults it before
// the registry. [LockTag] serializes builds of one tag among processes on a
// host.
//
// The package keeps no global state and does not log.
package cache
