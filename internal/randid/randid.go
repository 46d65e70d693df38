// Package randid makes random identifiers (build ids, lease tokens).
package randid

import (
	"crypto/rand"
	"encoding/hex"
)

// New returns 16 random hex digits. crypto/rand does not fail on the
// systems Go supports (it panics rather than return an error).
func New() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
