package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"

	"github.com/ispec-dev/ispec/pylock"
)

// LockedPython is the Python section of a lock file: what `ispec lock`
// resolved the spec's packages and requirements file to, per platform.
type LockedPython struct {
	// Inputs is the digest of what was resolved (PythonInputs): when the
	// spec's Python requirements, index options or base change, the
	// section no longer applies and the spec must be locked again.
	Inputs string `json:"inputs"`
	// Platforms maps each platform to its distributions.
	Platforms map[string]*LockedPlatform `json:"platforms"`
}

// LockedPlatform is every distribution of one platform.
type LockedPlatform struct {
	// Packages are the distributions, sorted by name; their fields follow
	// PEP 751's package table.
	Packages []LockedPackage `json:"packages"`
}

// LockedPackage is one distribution, as PEP 751's [[packages]] table
// writes it: a name, a version and the one artifact to install.
type LockedPackage struct {
	// Name is the distribution name in PEP 503 form.
	Name string `json:"name"`
	// Version is its version.
	Version string `json:"version"`
	// Wheels holds the wheel to install; Sdist the sdist when pip chose
	// one instead.
	Wheels []LockedArtifact `json:"wheels,omitempty"`
	// Sdist is the source distribution pip chose, when no wheel.
	Sdist *LockedArtifact `json:"sdist,omitempty"`
}

// LockedArtifact is one file of a distribution.
type LockedArtifact struct {
	// Name is the file name.
	Name string `json:"name"`
	// URL is where it is downloaded from.
	URL string `json:"url"`
	// Hashes holds its sha256 (hex).
	Hashes map[string]string `json:"hashes"`
}

// LockedPackages writes pins as a platform's locked packages.
func LockedPackages(pins []pylock.Pin) *LockedPlatform {
	out := &LockedPlatform{Packages: []LockedPackage{}}
	for _, p := range pins {
		a := LockedArtifact{Name: p.File, URL: p.URL, Hashes: map[string]string{"sha256": p.SHA256}}
		lp := LockedPackage{Name: p.Name, Version: p.Version}
		if len(p.File) > 4 && p.File[len(p.File)-4:] == ".whl" {
			lp.Wheels = []LockedArtifact{a}
		} else {
			lp.Sdist = &a
		}
		out.Packages = append(out.Packages, lp)
	}
	sort.Slice(out.Packages, func(i, j int) bool { return out.Packages[i].Name < out.Packages[j].Name })
	return out
}

// Pins reads a platform's locked packages back as pins.
func (lp *LockedPlatform) Pins() []pylock.Pin {
	var out []pylock.Pin
	for _, p := range lp.Packages {
		var a *LockedArtifact
		switch {
		case len(p.Wheels) > 0:
			a = &p.Wheels[0]
		case p.Sdist != nil:
			a = p.Sdist
		default:
			continue
		}
		out = append(out, pylock.Pin{Name: p.Name, Version: p.Version, File: a.Name, URL: a.URL, SHA256: a.Hashes["sha256"]})
	}
	return out
}

// PythonInputs is the digest of everything `ispec lock` resolves an
// image's Python requirements from: packages, the requirements file and
// its includes, the index options, pip_extra_args, the Python and the
// base. A lock's Python section applies while it is unchanged.
func (img *Image) PythonInputs() string {
	s := img.Spec
	doc := map[string]any{"packages": append([]string{}, s.Packages...)}
	if img.Requirements != nil && !img.NamesPythonLock() {
		doc["requirements"] = img.requirementsDocument()
	}
	args, _ := splitArgs(s.PipExtraArgs)
	doc["pip_extra_args"] = append([]string{}, args...)
	doc["pip_index"] = s.PipIndex
	doc["pip_extra_index_url"] = append([]string{}, s.PipExtraIndexURL...)
	doc["python_version"] = s.PythonVersion
	doc["python_exec"] = s.PythonExec
	if img.Parent != nil {
		doc["base"] = img.Parent.Identity.SpecHash
	} else {
		doc["base"] = img.Base
	}
	sum := sha256.Sum256(canonical(doc))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// resolvesPython reports whether `ispec lock` resolves img's Python
// requirements: packages, or a requirements file that is not a Python
// lock (a Python lock pins itself).
func (img *Image) resolvesPython() bool {
	return !img.NamesPythonLock() && (len(img.Spec.Packages) > 0 || img.Requirements != nil)
}

// applyLockedPython uses the lock's Python section for img: its pins
// replace the packages and requirements steps, and the tag covers them.
func (img *Image) applyLockedPython(file string) error {
	l := img.Lock
	if l == nil || l.Python == nil {
		return nil
	}
	lp := LockPath(file)
	if !img.resolvesPython() {
		return &FieldError{File: lp, Field: "python", Msg: "the lock pins Python packages but the spec asks for none to resolve (or names a Python lock file); run ispec lock again"}
	}
	if l.Python.Inputs != img.PythonInputs() {
		return &FieldError{File: lp, Field: "python.inputs", Msg: "the spec's Python requirements, index options, Python or base changed since the lock was written; run ispec lock again"}
	}
	locked := map[string]*LockedPlatform{}
	for p, v := range l.Python.Platforms {
		locked[NormalizePlatform(p)] = v
	}
	pl := &PythonLock{Format: FormatIspecLock, Pins: map[string][]pylock.Pin{}, Resolved: true}
	var missing []string
	for _, p := range img.Spec.Platform {
		v, ok := locked[p]
		if !ok || v == nil {
			missing = append(missing, p)
			continue
		}
		pins := v.Pins()
		for i, pin := range pins {
			if pin.URL == "" || len(pin.SHA256) != 64 {
				return &FieldError{File: lp, Field: fmt.Sprintf("python.platforms.%s.packages[%d]", p, i), Msg: fmt.Sprintf("%s %s has no URL or sha256; run ispec lock again", pin.Name, pin.Version)}
			}
		}
		pl.Pins[p] = pins
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return &FieldError{File: lp, Field: "python.platforms", Msg: fmt.Sprintf("no Python packages for %v; run ispec lock again", missing)}
	}
	img.PythonLock = pl
	img.floating = nil
	return nil
}

// FormatIspecLock names pins that come from the spec's own lock file
// (`ispec lock`), not from a Python lock the spec names.
const FormatIspecLock = pylock.Format("ispec lock")

// pythonPinnedDocument is the python_pinned member of the hash document:
// per platform, the digest of its pins.
func (img *Image) pythonPinnedDocument() map[string]any {
	out := map[string]any{}
	for p, pins := range img.PythonLock.Pins {
		var lines []any
		for _, pin := range pins {
			lines = append(lines, pin.Name+"=="+pin.Version+" "+pin.URL+" sha256:"+pin.SHA256)
		}
		if lines == nil {
			lines = []any{}
		}
		sum := sha256.Sum256(canonical(lines))
		out[p] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// NamesPythonLock reports whether the spec's requirements name a Python
// lock file (uv.lock, poetry.lock, pylock.toml), as opposed to a pip
// requirements file or pins from the spec's own lock.
func (img *Image) NamesPythonLock() bool {
	return img.PythonLock != nil && !img.PythonLock.Resolved
}
