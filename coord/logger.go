package coord

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// RedisLogger takes go-redis's own messages (redis.SetLogger) to a
// structured log, once per state change: a message of the kind logged
// last (a retry of the same dial, say) is counted, not logged again; the
// next message of another kind is logged with how many times the last
// one repeated.
type RedisLogger struct {
	log     *slog.Logger
	mu      sync.Mutex
	last    string // the format of the last message logged
	repeats int
}

// NewRedisLogger returns a RedisLogger that writes to l.
func NewRedisLogger(l *slog.Logger) *RedisLogger { return &RedisLogger{log: l} }

// Printf implements go-redis's logging interface.
func (r *RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if format == r.last {
		r.repeats++
		return
	}
	attrs := []any{"message", strings.TrimSpace(fmt.Sprintf(format, v...))}
	if r.repeats > 0 {
		attrs = append(attrs, "previous_repeated", r.repeats)
	}
	r.last, r.repeats = format, 0
	r.log.WarnContext(ctx, "redis client", attrs...)
}
