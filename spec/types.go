// Package spec reads image spec files, validates and normalizes them, and
// computes the content-addressed identity (the tag) of the image they
// declare. It does no network I/O.
package spec

// Spec is one declared image, as written in a spec file. Field names follow
// flytekit's ImageSpec, so an ImageSpec YAML file loads unchanged. All fields
// are optional.
type Spec struct {
	// Name is the repository name; the image is {registry}/{name}:{tag}.
	// DefaultName when absent; lowercased, as flytekit does. Not part of
	// the hash.
	Name string `json:"name"`
	// Registry is where the image is pushed (host[:port][/path]),
	// lowercased as flytekit does. Not part of the hash.
	Registry string `json:"registry,omitempty"`
	// BaseImage is the image to build on: a reference, or another spec file.
	BaseImage BaseImage `json:"base_image,omitempty"`
	// PythonVersion is the Python of the image's virtual environment
	// ("3.11"). Without a base image it also selects the default base.
	PythonVersion string `json:"python_version,omitempty"`
	// PythonExec is the Python interpreter in the base image to make the
	// virtual environment with (default python{python_version} or python3).
	PythonExec string `json:"python_exec,omitempty"`
	// Packages are pip requirement strings (PEP 508), a set.
	Packages []string `json:"packages,omitempty"`
	// Requirements is a requirements file, relative to the spec file.
	Requirements string `json:"requirements,omitempty"`
	// AptPackages are Debian package names, optionally pinned (name=version), a set.
	AptPackages []string `json:"apt_packages,omitempty"`
	// CondaPackages are conda package specs, a set.
	CondaPackages []string `json:"conda_packages,omitempty"`
	// CondaChannels are conda channels, in priority order.
	CondaChannels []string `json:"conda_channels,omitempty"`
	// Cuda is the CUDA version ("12.4.1"); it selects a CUDA base image.
	Cuda string `json:"cuda,omitempty"`
	// Cudnn is the cuDNN major version ("9").
	Cudnn string `json:"cudnn,omitempty"`
	// Env are environment variables of the image.
	Env map[string]string `json:"env,omitempty"`
	// Commands are shell commands run in order after the packages are installed.
	Commands []string `json:"commands,omitempty"`
	// Copy lists files or folders, relative to the spec file, copied into the
	// image's working directory at the same relative path.
	Copy []string `json:"copy,omitempty"`
	// SourceRoot is the project's source folder, relative to the spec file,
	// copied into the working directory after ignore rules.
	SourceRoot string `json:"source_root,omitempty"`
	// SourceCopyMode is flytekit's copy mode for source_root: CopyAll,
	// CopyLoadedModules (copied as CopyAll) or CopyNone (neither copied nor
	// hashed). Not hashed itself: its effect is.
	SourceCopyMode string `json:"source_copy_mode,omitempty"`
	// PipIndex is pip's --index-url.
	PipIndex string `json:"pip_index,omitempty"`
	// PipExtraIndexURL are pip's --extra-index-url values, in order.
	PipExtraIndexURL []string `json:"pip_extra_index_url,omitempty"`
	// PipExtraArgs are extra arguments for pip install, split like a shell
	// would split them but never run through a shell.
	PipExtraArgs string `json:"pip_extra_args,omitempty"`
	// PipSecretMounts are secret files mounted only while pip runs
	// ([source, target] pairs, or {source, env} for an env variable). Not
	// part of the hash; never in a layer.
	PipSecretMounts []SecretMount `json:"pip_secret_mounts,omitempty"`
	// Platform is the target platform(s), "os/arch[/variant]"; one value, a
	// comma-separated string or a list. Default linux/amd64.
	Platform []string `json:"platform,omitempty"`
	// Entrypoint is the image's entrypoint; an empty list clears the base's.
	// Nil keeps the base's.
	Entrypoint []string `json:"entrypoint,omitempty"`
	// Workdir is the image's working directory (absolute). Default /root.
	Workdir string `json:"workdir,omitempty"`
	// User is who the image runs as: a user name, or uid[:gid]. Default:
	// the base image's user when it is not root, else "flytekit", created
	// when the base has none, as flytekit's builder does. "root" or "0"
	// keeps the image running as root.
	User string `json:"user,omitempty"`
	// Labels are extra image labels.
	Labels map[string]string `json:"labels,omitempty"`
	// TagFormat formats the tag from the hash, e.g. "{spec_hash}-gpu". Not
	// part of the hash.
	TagFormat string `json:"tag_format,omitempty"`
	// Builder names flytekit's builder plugin; accepted and ignored.
	Builder string `json:"builder,omitempty"`
	// BuilderOptions are flytekit's builder options; accepted and ignored.
	BuilderOptions map[string]string `json:"builder_options,omitempty"`
	// RegistryConfig is flytekit's registry config path; accepted and ignored.
	RegistryConfig string `json:"registry_config,omitempty"`
	// Layers are ordered image layers built after the flat fields' layers,
	// each on the one before (see Layer and docs/layers.md).
	Layers []Layer `json:"layers,omitempty"`

	// lines maps field paths ("packages[2]", "env.FOO") to source lines.
	lines map[string]int
}

// BaseImage is either a reference to an image or the path of another spec
// file whose image is built first.
type BaseImage struct {
	// Ref is an image reference such as "python:3.11-slim".
	Ref string `json:"ref,omitempty"`
	// Spec is a spec file path, relative to the referring spec file.
	Spec string `json:"spec,omitempty"`
}

// IsZero reports whether no base image was given.
func (b BaseImage) IsZero() bool { return b.Ref == "" && b.Spec == "" }

// SecretMount is a secret file available only while pip runs: mounted
// as a file at Target, or given as the value of the env variable Env
// (exactly one of the two).
type SecretMount struct {
	// Source is the path of the secret file on the machine that builds.
	Source string `json:"source"`
	// Target is where the secret is mounted during pip install.
	Target string `json:"target,omitempty"`
	// Env names the env variable that holds the secret's contents (one
	// trailing newline dropped) during pip install.
	Env string `json:"env,omitempty"`
}
