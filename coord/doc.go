// Package coord is the shared coordination of server replicas in Redis,
// behind the build-once pipeline's Locker and Exchange interfaces:
//
//   - a lease per tag, taken with its fence by one script (SET NX PX with
//     an owner token; the fence is the larger of the tag's counter plus
//     one and the clock in milliseconds, so a restarted Redis never hands
//     out a smaller one), renewed every third of its TTL by a
//     compare-and-extend script that never takes it back, confirmed and
//     extended right before the push by one compare script (owner and
//     fence), and released by a compare-and-delete script;
//   - a lease whose renewals fail ends at its validity deadline (its TTL
//     from the last renewal sent, less the clock drift, as redsync
//     computes it), and one another owner took ends at once: the build's
//     held context ends with ensure.ErrLeaseLost, so it stops before it
//     pushes;
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
