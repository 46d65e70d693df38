package pylock

import (
	"strings"
)

// Requirements writes pins as a pip requirements file to install with
// --no-deps --require-hashes: one line per pin, "name @ URL" with its
// hash when the lock records the URL, else "name==version" with every
// hash the lock records for that version (pip takes the file from the
// index, and it must have one of them). A residual marker follows the
// requirement; indexes become --extra-index-url lines.
func Requirements(pins []Pin, indexes []string) []byte {
	var b strings.Builder
	for _, u := range indexes {
		b.WriteString("--extra-index-url " + u + "\n")
	}
	for _, p := range pins {
		if p.URL != "" {
			b.WriteString(p.Name + " @ " + p.URL)
			if p.Marker != "" {
				b.WriteString(" ; " + p.Marker)
			}
			b.WriteString(" --hash=sha256:" + p.SHA256 + "\n")
			continue
		}
		b.WriteString(p.Name + "==" + p.Version)
		if p.Marker != "" {
			b.WriteString(" ; " + p.Marker)
		}
		hashes := p.Hashes
		if len(hashes) == 0 {
			hashes = []string{p.SHA256}
		}
		for _, h := range hashes {
			b.WriteString(" --hash=sha256:" + h)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}
