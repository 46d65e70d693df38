// Package ensure is the build-once pipeline: for one image it looks the
// tag up, and only when it is absent takes the tag's build lock, looks it
// up again, builds and pushes it, and records it. Callers that ask for a
// tag that is already being built in the same process join that build:
// they see its events from the start and get its result.
//
// The pipeline's needs are small interfaces (Lookup, Builder, Locker,
// Recorder) and its output is a stream of Events, so the CLI and the gRPC
// server are two adapters over the same code: each renders the events its
// way and maps error classes (ClassOf) to exit codes or status codes.
//
// The vocabulary of a call (Request, Event, Kind, Result, Outcome, Class,
// Upload, File) is declared in package ensure/call and named here under
// the same names: ensure.Event and call.Event are one type, so a Go caller
// of the pipeline imports ensure alone, and a caller that only speaks to
// a server (package client) imports call without linking the pipeline,
// BuildKit or the registry cache. An event's progress is a
// *progress.Status (package builder/progress), BuildKit's solve status in
// ispec's own types; builder.SolveStatus converts it for BuildKit's
// displays.
package ensure
