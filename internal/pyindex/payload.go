package pyindex

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Payload returns size bytes that do not compress (a ChaCha8 stream keyed
// by seed, its first 32 bytes), the same bytes for the same seed and size:
// the content of a heavy package that stands in for torch or tensorflow.
func Payload(size int, seed string) string {
	var key [32]byte
	copy(key[:], seed)
	r := rand.New(rand.NewChaCha8(key))
	var b strings.Builder
	b.Grow(size + 8)
	buf := make([]byte, 8)
	for b.Len() < size {
		v := r.Uint64()
		for i := range buf {
			buf[i] = byte(v >> (8 * i))
		}
		b.Write(buf)
	}
	return b.String()[:size]
}

// HeavyFiles returns the files of a heavy wheel for the distribution name
// at version: its module's __init__.py (defining __version__) and parts
// blob files of incompressible bytes, size bytes in all, the same bytes
// for the same arguments. parts below 1 means one.
func HeavyFiles(name, version string, size, parts int) map[string]string {
	parts = max(parts, 1)
	mod := escapeName(name)
	files := map[string]string{mod + "/__init__.py": fmt.Sprintf("__version__ = %q\n", version)}
	for i := range parts {
		n := size / parts
		if i == parts-1 {
			n = size - n*(parts-1)
		}
		files[fmt.Sprintf("%s/blob%03d.bin", mod, i)] = Payload(n, fmt.Sprintf("%s-%s-%d", name, version, i))
	}
	return files
}
