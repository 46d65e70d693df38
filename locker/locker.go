package locker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// BaseResolver says what a base image reference points to, per platform
// (*cache.Remote).
type BaseResolver interface {
	ResolvePlatforms(ctx context.Context, ref name.Reference, platforms []v1.Platform) (cache.Resolved, error)
}

// PythonResolver resolves a spec's Python requirements for one platform
// with pip inside BuildKit (*builder.Builder, *pool.Pool).
type PythonResolver interface {
	ResolvePython(ctx context.Context, img *spec.Image, opts builder.ResolveOptions) ([]pylock.Pin, error)
}

// Locker makes locks. It is safe for concurrent use when its resolvers
// are.
type Locker struct {
	base   BaseResolver
	python PythonResolver
	netrc  []byte
}

// Option configures a Locker.
type Option func(*Locker) error

// WithPython resolves Python requirements with r.
//
// The default, none, makes locking a spec with Python requirements an
// error (ErrNoPython).
func WithPython(r PythonResolver) Option {
	return func(l *Locker) error {
		if r == nil {
			return errors.New("python resolver is nil")
		}
		l.python = r
		return nil
	}
}

// WithPipNetrc gives pip this netrc (private index credentials) as a
// BuildKit secret while it resolves. It never reaches a lock, an error or
// a log.
//
// The default is none.
func WithPipNetrc(netrc []byte) Option {
	return func(l *Locker) error { l.netrc = netrc; return nil }
}

// New returns a Locker that resolves base images with base.
func New(base BaseResolver, opts ...Option) (*Locker, error) {
	if base == nil {
		return nil, errors.New("locker: a base resolver is required")
	}
	l := &Locker{base: base}
	for _, opt := range opts {
		if err := opt(l); err != nil {
			return nil, fmt.Errorf("locker: %w", err)
		}
	}
	return l, nil
}

// ErrNoPython is matched (errors.Is) by Lock's error for a spec with
// Python requirements when the Locker has no Python resolver.
var ErrNoPython = errors.New("no Python resolver")

// InvalidError is a lock the spec or the request makes impossible (a base
// image the registry does not have, --upgrade-package without Python
// pins). It matches spec.ErrInvalid.
type InvalidError struct{ Err error }

// Error implements error.
func (e *InvalidError) Error() string { return e.Err.Error() }

// Unwrap returns the cause and spec.ErrInvalid.
func (e *InvalidError) Unwrap() []error { return []error{e.Err, spec.ErrInvalid} }

func invalid(format string, args ...any) error {
	return &InvalidError{Err: fmt.Errorf(format, args...)}
}

// Lock resolves img's floating inputs now: its base image's digests (or
// its parent's tag) and its Python requirements on that base, for each
// platform. img is loaded without its lock (spec.Options.IgnoreLock).
// upgrade names Python packages that may move; with it, every other
// package keeps old's pin (old must pin Python packages then).
func (l *Locker) Lock(ctx context.Context, img *spec.Image, old *spec.Lock, upgrade []string) (*spec.Lock, error) {
	fresh, err := l.lockBase(ctx, img)
	if err != nil {
		return nil, err
	}
	if err := l.lockPython(ctx, img, fresh, old, upgrade); err != nil {
		return nil, err
	}
	fresh.Version = spec.LockVersion
	return fresh, nil
}

// Check resolves img again (as Lock) and names what drifted from old:
// nothing when the lock still holds. A missing old lock is an
// *InvalidError.
func (l *Locker) Check(ctx context.Context, img *spec.Image, old *spec.Lock, upgrade []string) ([]string, error) {
	if old == nil {
		return nil, invalid("%s: no lock file to check; run ispec lock %s", img.File, img.File)
	}
	fresh, err := l.Lock(ctx, img, old, upgrade)
	if err != nil {
		return nil, err
	}
	return Drift(old, fresh), nil
}

// lockBase asks the registry what the spec's base is now.
func (l *Locker) lockBase(ctx context.Context, img *spec.Image) (*spec.Lock, error) {
	out := &spec.Lock{Version: spec.LockVersion}
	if img.Parent != nil {
		out.Parent = &spec.LockedParent{Spec: img.Spec.BaseImage.Spec, Ref: img.Parent.Identity.Ref}
		return out, nil
	}
	ref, err := name.ParseReference(img.Base)
	if err != nil {
		return nil, invalid("%s: base_image: %w", img.File, err)
	}
	plats := make([]v1.Platform, len(img.Spec.Platform))
	for i, p := range img.Spec.Platform {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, &InvalidError{Err: err}
		}
		plats[i] = *pl
	}
	res, err := l.base.ResolvePlatforms(ctx, ref, plats)
	if err != nil {
		var pe *cache.PlatformError
		if cache.IsAbsent(err) || errors.As(err, &pe) {
			return nil, invalid("%s: base_image: %w", img.File, err)
		}
		return nil, fmt.Errorf("%s: resolving base image: %w", img.File, err)
	}
	out.BaseImage = &spec.LockedImage{Ref: img.Base, Digest: res.Digest.String(), Platforms: map[string]string{}}
	for i, pd := range res.Platforms {
		out.BaseImage.Platforms[img.Spec.Platform[i]] = pd.Digest.String()
	}
	return out, nil
}

// lockPython resolves img's Python requirements for each platform on the
// base fresh pins (or the parent's image), into fresh.Python. A nested
// spec is resolved against its parents' locked environment: their pins
// constrain the resolution, and the lock records only what the child
// adds.
func (l *Locker) lockPython(ctx context.Context, img *spec.Image, fresh, old *spec.Lock, upgrade []string) error {
	if !builder.NeedsResolve(img) {
		if len(upgrade) > 0 {
			return invalid("%s: --upgrade-package: the spec has no Python packages for ispec lock to resolve", img.File)
		}
		return nil
	}
	if len(upgrade) > 0 && (old == nil || old.Python == nil) {
		return invalid("%s: --upgrade-package: the lock pins no Python packages yet; run ispec lock first", img.File)
	}
	if l.python == nil {
		return fmt.Errorf("%s: resolving Python requirements: %w", img.File, ErrNoPython)
	}
	fresh.Python = &spec.LockedPython{Inputs: img.PythonInputs(), Platforms: map[string]*spec.LockedPlatform{}}
	for _, p := range img.Spec.Platform {
		base := img.Base
		switch {
		case img.Parent != nil:
			base = img.Parent.Identity.Ref
		case fresh.BaseImage != nil && fresh.BaseImage.Platforms[p] != "":
			base = spec.Repository(img.Base) + "@" + fresh.BaseImage.Platforms[p]
		}
		var constraints []byte
		if len(upgrade) > 0 {
			constraints = keepPins(old.Python.Platforms[p], upgrade)
		}
		inherited := parentPins(img, p)
		constraints = append(constraints, pinLines(inherited)...)
		pins, err := l.python.ResolvePython(ctx, img, builder.ResolveOptions{Base: base, Platform: p, Constraints: constraints, PipNetrc: l.netrc})
		if err != nil {
			return fmt.Errorf("%s: resolving Python requirements for %s: %w", img.File, p, err)
		}
		fresh.Python.Platforms[p] = spec.LockedPackages(added(pins, inherited))
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

// normalizeName is a distribution name as PEP 503 compares them.
func normalizeName(n string) string {
	return strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(strings.TrimSpace(n)))
}

// Pylock returns the Python pins of l as a PEP 751 pylock.toml, or an
// *InvalidError when l pins no Python packages.
func Pylock(l *spec.Lock) ([]byte, error) {
	if l.Python == nil {
		return nil, invalid("the spec has no Python packages for ispec lock to resolve")
	}
	pins := map[string][]pylock.Pin{}
	for p, lp := range l.Python.Platforms {
		pins[p] = lp.Pins()
	}
	return pylock.WritePEP751(pins)
}
