package spec

import (
	"fmt"
	"sort"
)

// LayerKind names what one item of a spec's layers does.
type LayerKind string

// The kinds of layer items, named as the spec writes them (and as
// flyte-sdk's image builder protocol names its layers).
const (
	LayerApt          LayerKind = "apt_packages"
	LayerPackages     LayerKind = "packages"
	LayerRequirements LayerKind = "requirements"
	LayerWheels       LayerKind = "python_wheels"
	LayerUVProject    LayerKind = "uv_project"
	LayerCommands     LayerKind = "commands"
	LayerWorkdir      LayerKind = "workdir"
	LayerCopy         LayerKind = "copy"
	LayerEnv          LayerKind = "env"
)

// layerKinds are the kinds, in the order the docs list them.
func layerKinds() []string {
	return []string{string(LayerApt), string(LayerPackages), string(LayerRequirements), string(LayerWheels),
		string(LayerUVProject), string(LayerCommands), string(LayerWorkdir), string(LayerCopy), string(LayerEnv)}
}

// pipOptionNames are the options a pip layer (packages, requirements,
// python_wheels) may give beside its kind.
func pipOptionNames() []string {
	return []string{"pip_index", "pip_extra_index_url", "pre", "pip_extra_args", "pip_secret_mounts", "allow_changes"}
}

// Python reports whether a layer of this kind installs into the image's
// Python virtual environment.
func (k LayerKind) Python() bool {
	return k == LayerPackages || k == LayerRequirements || k == LayerWheels || k == LayerUVProject
}

// Layer is one item of a spec's layers: one image layer, built on the
// layers before it. Exactly one kind's field is set (Kind says which);
// the pip options go with packages, requirements and python_wheels only.
type Layer struct {
	// Kind is the item's kind.
	Kind LayerKind `json:"kind"`
	// AptPackages are Debian package names (a set), for LayerApt.
	AptPackages []string `json:"apt_packages,omitempty"`
	// Packages are pip requirements (PEP 508, a set), for LayerPackages.
	Packages []string `json:"packages,omitempty"`
	// Requirements is a requirements file relative to the spec file, for
	// LayerRequirements.
	Requirements string `json:"requirements,omitempty"`
	// PythonWheels is a folder of .whl files relative to the spec file,
	// for LayerWheels; every wheel in it is installed.
	PythonWheels string `json:"python_wheels,omitempty"`
	// UVProject is a uv project's pyproject.toml and uv.lock, for
	// LayerUVProject; its locked dependencies are installed (not the
	// project itself), with the uv of the image.
	UVProject *UVProject `json:"uv_project,omitempty"`
	// Commands are shell commands run in order, one layer, for
	// LayerCommands.
	Commands []string `json:"commands,omitempty"`
	// Workdir is the working directory of the layers after it and of the
	// image (absolute), for LayerWorkdir.
	Workdir string `json:"workdir,omitempty"`
	// Copy are files or folders copied into the image, for LayerCopy.
	Copy []CopyPair `json:"copy,omitempty"`
	// Env are variables set for the layers after it and in the image,
	// for LayerEnv. Values are expanded as Dockerfile ENV expands them.
	Env map[string]string `json:"env,omitempty"`
	// Pip holds a pip layer's options.
	Pip PipOptions `json:"pip,omitzero"`
}

// PipOptions are the options of one pip layer. They replace the spec's
// flat pip options for that layer; the spec's pip_secret_mounts and the
// configured netrc are mounted in every pip layer, the layer's own
// SecretMounts in its pip step only.
type PipOptions struct {
	// Index is pip's --index-url.
	Index string `json:"pip_index,omitempty"`
	// ExtraIndexURL are pip's --extra-index-url values, in order.
	ExtraIndexURL []string `json:"pip_extra_index_url,omitempty"`
	// Pre passes --pre.
	Pre bool `json:"pre,omitempty"`
	// ExtraArgs are extra arguments, split as the flat pip_extra_args are.
	ExtraArgs string `json:"pip_extra_args,omitempty"`
	// AllowChanges lets the layer change the version of a package an
	// earlier layer installed; without it the layer fails when it does.
	AllowChanges bool `json:"allow_changes,omitempty"`
	// SecretMounts are secret files mounted only while this layer's pip
	// runs, beside the spec's pip_secret_mounts (no target may be one of
	// theirs). Like those, they are not hashed: neither their sources nor
	// their contents.
	SecretMounts []SecretMount `json:"pip_secret_mounts,omitempty"`
}

// UVProject names a uv project's files, relative to the spec file.
type UVProject struct {
	// Pyproject is the project's pyproject.toml.
	Pyproject string `json:"pyproject"`
	// UVLock is the project's uv.lock.
	UVLock string `json:"uvlock"`
}

// CopyPair is one file or folder a copy layer copies.
type CopyPair struct {
	// Src is relative to the spec file's folder.
	Src string `json:"src"`
	// Dst is where it goes: absolute, or relative to the working
	// directory at that layer. A folder's contents are copied into Dst.
	Dst string `json:"dst"`
}

// LayerTrees are the hashed files of one layer item, by kind: the
// requirements files, the wheels folder, the uv project's files, or one
// tree per copy pair.
type LayerTrees struct {
	// Requirements holds the requirements file and what it includes,
	// at their paths relative to the spec's folder.
	Requirements *Tree
	// RequirementsFile is the requirements file's path in Requirements.
	RequirementsFile string
	// Wheels is the python_wheels folder.
	Wheels *Tree
	// Pyproject and UVLock are the uv project's files (single-file trees).
	Pyproject, UVLock *Tree
	// Copies are the copy pairs' trees, in the order written.
	Copies []*Tree
}

// WheelFiles returns the paths, relative to the wheels folder, of the .whl
// files a python_wheels layer installs, sorted.
func (t *LayerTrees) WheelFiles() []string {
	if t == nil || t.Wheels == nil {
		return nil
	}
	var out []string
	for _, e := range t.Wheels.Entries {
		if e.Kind == KindFile && wheelRe.MatchString(e.Path) {
			out = append(out, e.Path)
		}
	}
	sort.Strings(out)
	return out
}

var wheelRe = lazyRe(`(?i)(^|/)[^/]+\.whl$`)

// LayerField is a layer item's field path in errors: "layers[2]".
func LayerField(i int) string { return fmt.Sprintf("layers[%d]", i) }

// HasLayers reports whether the spec gives layers.
func (s *Spec) HasLayers() bool { return len(s.Layers) > 0 }

// PythonLayers reports whether any layer installs Python packages.
func (s *Spec) PythonLayers() bool {
	for _, l := range s.Layers {
		if l.Kind.Python() {
			return true
		}
	}
	return false
}

// Trees lists every tree of the layer item, nil ones left out.
func (t *LayerTrees) Trees() []*Tree {
	var out []*Tree
	for _, x := range append([]*Tree{t.Requirements, t.Wheels, t.Pyproject, t.UVLock}, t.Copies...) {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}
