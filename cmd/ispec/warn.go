package main

import (
	"fmt"
	"strings"

	"github.com/ispec-dev/ispec/spec"
)

// warnLoaded says once per spec file, nested base specs included, which
// secret files were left out of its copied trees (a warning) and which
// ImageSpec fields it sets that ispec ignores (a notice).
func warnLoaded(msgs *messages, imgs []*spec.Image) {
	seen := map[*spec.Image]bool{}
	for _, img := range imgs {
		for ; img != nil && !seen[img]; img = img.Parent {
			seen[img] = true
			for _, n := range spec.IgnoredFields(img.Spec) {
				msgs.notice("%s: %s", img.File, n)
			}
			if len(img.Excluded) == 0 {
				continue
			}
			parts := make([]string, len(img.Excluded))
			for i, e := range img.Excluded {
				parts[i] = fmt.Sprintf("%s (in %s)", e.Path, e.Field)
			}
			msgs.warn("%s: left out of the image and its tag: %s: pip secret files never enter a layer",
				img.File, strings.Join(parts, ", "))
		}
	}
}
