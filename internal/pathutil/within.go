// Package pathutil holds path checks the packages share.
package pathutil

import (
	"path/filepath"
	"strings"
)

// Within reports whether p is root or below it. Both must be clean and
// absolute (or both relative to the same folder); nothing is resolved.
func Within(root, p string) bool {
	return p == root || strings.HasPrefix(p, strings.TrimSuffix(root, string(filepath.Separator))+string(filepath.Separator))
}
