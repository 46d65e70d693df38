package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// pythonLocker resolves specs' Python requirements with BuildKit,
// connecting on first use.
type pythonLocker struct {
	cfg   *config
	b     *builder.Builder
	netrc []byte
}

func (pl *pythonLocker) close() {
	if pl.b != nil {
		pl.b.Close()
	}
}

func (pl *pythonLocker) builder(ctx context.Context) (*builder.Builder, error) {
	if pl.b != nil {
		return pl.b, nil
	}
	if pl.cfg.PipNetrc != "" {
		netrc, err := os.ReadFile(pl.cfg.PipNetrc)
		if err != nil {
			return nil, usageError{fmt.Errorf("pip-netrc: reading %s: %w", pl.cfg.PipNetrc, err)}
		}
		pl.netrc = netrc
	}
	addr := ""
	if list := nonEmpty(strings.Split(pl.cfg.BuildkitAddr, ",")...); len(list) > 0 {
		addr = list[0]
	}
	b, err := builder.New(ctx, builder.Options{Addr: addr, TLS: pl.cfg.BuildkitTLS, Version: ispecVersion()})
	if err != nil {
		return nil, err
	}
	pl.b = b
	return b, nil
}

// lock resolves img's Python requirements for each platform on the base
// l pins (or the parent's image), into l.Python. upgrade names packages
// that may move; with it, every other package keeps old's pin. A nested
// spec is resolved against its parents' locked environment: their pins
// constrain the resolution, and the lock records only what the child
// adds.
func (pl *pythonLocker) lock(ctx context.Context, img *spec.Image, l, old *spec.Lock, upgrade []string) error {
	if !builder.NeedsResolve(img) {
		if len(upgrade) > 0 {
			return usageError{fmt.Errorf("%s: --upgrade-package: the spec has no Python packages for ispec lock to resolve", img.File)}
		}
		return nil
	}
	if len(upgrade) > 0 && (old == nil || old.Python == nil) {
		return usageError{fmt.Errorf("%s: --upgrade-package: the lock pins no Python packages yet; run ispec lock first", img.File)}
	}
	b, err := pl.builder(ctx)
	if err != nil {
		return err
	}
	l.Python = &spec.LockedPython{Inputs: img.PythonInputs(), Platforms: map[string]*spec.LockedPlatform{}}
	for _, p := range img.Spec.Platform {
		base := img.Base
		switch {
		case img.Parent != nil:
			base = img.Parent.Identity.Ref
		case l.BaseImage != nil && l.BaseImage.Platforms[p] != "":
			base = spec.Repository(img.Base) + "@" + l.BaseImage.Platforms[p]
		}
		var constraints []byte
		if len(upgrade) > 0 {
			constraints = keepPins(old.Python.Platforms[p], upgrade)
		}
		inherited := parentPins(img, p)
		constraints = append(constraints, pinLines(inherited)...)
		pins, err := b.ResolvePython(ctx, img, builder.ResolveOptions{Base: base, Platform: p, Constraints: constraints, PipNetrc: pl.netrc})
		if err != nil {
			return fmt.Errorf("%s: resolving Python requirements for %s: %w", img.File, p, err)
		}
		l.Python.Platforms[p] = spec.LockedPackages(added(pins, inherited))
	}
	return nil
}

// parentPins is the locked Python environment img's nested base specs
// install on platform p, outermost first (a later pin of a name wins):
// the pins of each parent's lock (its SPEC.lock or the Python lock file
// it names). A parent whose Python requirements float adds nothing.
func parentPins(img *spec.Image, p string) []pylock.Pin {
	var chain []*spec.Image
	for a := img.Parent; a != nil; a = a.Parent {
		chain = append([]*spec.Image{a}, chain...)
	}
	var out []pylock.Pin
	for _, a := range chain {
		if pins, ok := a.PythonPins(p); ok {
			out = append(out, pins...)
		}
	}
	return out
}

// pinLines is a constraints file holding each pin's name==version.
func pinLines(pins []pylock.Pin) []byte {
	var b strings.Builder
	for _, p := range pins {
		fmt.Fprintf(&b, "%s==%s\n", p.Name, p.Version)
	}
	return []byte(b.String())
}

// added drops from pins the distributions the parents install already
// (the constraints kept them at the parents' versions).
func added(pins, inherited []pylock.Pin) []pylock.Pin {
	have := map[string]bool{}
	for _, p := range inherited {
		have[normalizeName(p.Name)] = true
	}
	var out []pylock.Pin
	for _, p := range pins {
		if !have[normalizeName(p.Name)] {
			out = append(out, p)
		}
	}
	return out
}

// keepPins is a constraints file that keeps every locked package but
// those named in upgrade.
func keepPins(lp *spec.LockedPlatform, upgrade []string) []byte {
	if lp == nil {
		return nil
	}
	moving := map[string]bool{}
	for _, u := range upgrade {
		moving[normalizeName(u)] = true
	}
	var b strings.Builder
	for _, p := range lp.Packages {
		if !moving[p.Name] {
			fmt.Fprintf(&b, "%s==%s\n", p.Name, p.Version)
		}
	}
	return []byte(b.String())
}

func normalizeName(n string) string {
	return strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(strings.TrimSpace(n)))
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
	var plats []string
	for p := range fresh.Python.Platforms {
		plats = append(plats, p)
	}
	sort.Strings(plats)
	for _, p := range plats {
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

// writePylock writes the Python pins of l as a PEP 751 pylock.toml.
func writePylock(file string, l *spec.Lock) error {
	if l.Python == nil {
		return usageError{fmt.Errorf("--pylock %s: the spec has no Python packages for ispec lock to resolve", file)}
	}
	pins := map[string][]pylock.Pin{}
	for p, lp := range l.Python.Platforms {
		pins[p] = lp.Pins()
	}
	data, err := pylock.WritePEP751(pins)
	if err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("--pylock: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--pylock: %w", err)
	}
	return nil
}
