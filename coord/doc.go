// Package coord is the shared coordination of server replicas in Redis,
// behind the build-once pipeline's Locker and Exchange interfaces:
//
//   - a lease per tag (SET NX PX with an owner token), renewed by a
//     compare-and-extend script every third of its TTL and released by a
//     compare-and-delete script, so only its owner extends or frees it; a
//     lease another owner took (or that expired and was taken) ends the
//     build's held context, so the build stops before it pushes;
//   - a fencing counter per tag (INCR), carried with the lease into the
//     build's events and records;
//   - a Redis stream per build with its events (trimmed and expired), which
//     callers on other replicas follow from the start; and a key per tag
//     with a failed build's error for the failure TTL.
//
// It is an efficiency lock: tags are content addressed, so the worst case
// of a lost lease is one duplicate build of an identical image, never a
// wrong image. When Redis cannot be reached, Lock falls back to an
// in-process lock (the registry is still checked again after the lock and
// before the push), Degraded reports true and a warning is logged; the
// next call that reaches Redis resumes shared coordination.
package coord
