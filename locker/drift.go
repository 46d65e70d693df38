package locker

import (
	"fmt"
	"sort"

	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// Drift names each pinned value of old that fresh (a new resolution of
// the same spec) no longer agrees with, one line each: the base image's
// digests, a nested parent's tag, and each Python package locked and
// available side by side. None: the lock holds.
func Drift(old, fresh *spec.Lock) []string {
	return append(baseDrift(old, fresh), pythonDrift(old, fresh)...)
}

// baseDrift names each base or parent pin upstream no longer agrees with.
func baseDrift(old, fresh *spec.Lock) []string {
	var out []string
	if fresh.BaseImage != nil {
		ob := old.BaseImage
		switch {
		case ob == nil || ob.Ref != fresh.BaseImage.Ref:
			out = append(out, fmt.Sprintf("base_image: the lock does not pin %s; run ispec lock", fresh.BaseImage.Ref))
		default:
			if ob.Digest != fresh.BaseImage.Digest {
				out = append(out, fmt.Sprintf("base_image %s: %s moved to %s", ob.Ref, ob.Digest, fresh.BaseImage.Digest))
			}
			for _, p := range sortedKeys(fresh.BaseImage.Platforms) {
				if o, n := ob.Platforms[p], fresh.BaseImage.Platforms[p]; o != n {
					out = append(out, fmt.Sprintf("base_image %s (%s): %s moved to %s", ob.Ref, p, orAbsent(o), n))
				}
			}
		}
	}
	if fresh.Parent != nil && (old.Parent == nil || old.Parent.Ref != fresh.Parent.Ref) {
		was := "(none)"
		if old.Parent != nil {
			was = old.Parent.Ref
		}
		out = append(out, fmt.Sprintf("parent %s: %s is now %s", fresh.Parent.Spec, was, fresh.Parent.Ref))
	}
	return out
}

// pythonDrift names each locked Python package whose resolution moved:
// locked and available side by side.
func pythonDrift(old, fresh *spec.Lock) []string {
	if fresh.Python == nil {
		return nil
	}
	if old.Python == nil {
		return []string{"python: the lock pins no Python packages; run ispec lock"}
	}
	var out []string
	for _, p := range sortedKeys(fresh.Python.Platforms) {
		was := map[string]pylock.Pin{}
		if op := old.Python.Platforms[p]; op != nil {
			for _, pin := range op.Pins() {
				was[pin.Name] = pin
			}
		}
		now := map[string]bool{}
		for _, pin := range fresh.Python.Platforms[p].Pins() {
			now[pin.Name] = true
			o, ok := was[pin.Name]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("python (%s): %s %s is now resolved too", p, pin.Name, pin.Version))
			case o.Version != pin.Version:
				out = append(out, fmt.Sprintf("python (%s): %s %s locked, %s available", p, pin.Name, o.Version, pin.Version))
			case o.SHA256 != pin.SHA256:
				out = append(out, fmt.Sprintf("python (%s): %s %s: the index now serves %s (sha256 %s), the lock has %s (sha256 %s)", p, pin.Name, pin.Version, pin.File, pin.SHA256, o.File, o.SHA256))
			}
		}
		var gone []string
		for n := range was {
			if !now[n] {
				gone = append(gone, n)
			}
		}
		sort.Strings(gone)
		for _, n := range gone {
			out = append(out, fmt.Sprintf("python (%s): %s %s is no longer resolved", p, n, was[n].Version))
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}
