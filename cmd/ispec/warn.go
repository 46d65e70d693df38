package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ispec-dev/ispec/spec"
)

// warnExcluded says once per spec file, nested base specs included, which
// secret files were left out of its copied trees.
func warnExcluded(w io.Writer, imgs []*spec.Image) {
	seen := map[*spec.Image]bool{}
	for _, img := range imgs {
		for ; img != nil && !seen[img]; img = img.Parent {
			seen[img] = true
			if len(img.Excluded) == 0 {
				continue
			}
			parts := make([]string, len(img.Excluded))
			for i, e := range img.Excluded {
				parts[i] = fmt.Sprintf("%s (in %s)", e.Path, e.Field)
			}
			fmt.Fprintf(w, "ispec: warning: %s: left out of the image and its tag: %s: pip secret files never enter a layer\n",
				img.File, strings.Join(parts, ", "))
		}
	}
}
