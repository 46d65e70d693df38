package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ispec-dev/ispec/spec"
)

// VenvDir is where the image's Python virtual environment lives.
const VenvDir = "/opt/venv"

// defaultPath is PATH for a base image whose config sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// requirementsDir is where the requirements files are mounted while pip
// runs, at their paths relative to the spec's folder.
const requirementsDir = "/run/ispec/requirements"

// singleFileName is the name a single-file tree is served as.
const singleFileName = "file"

// Names of the local sources the graph reads through the session; the keys
// of LocalMounts.
const (
	localRequirements = "requirements"
	localSource       = "source"
	localCopyPrefix   = "copy-"
)

// epoch returns the fixed creation time of everything the builder writes,
// a new value each time so that no caller can change another's.
func epoch() *time.Time {
	t := time.Unix(0, 0).UTC()
	return &t
}

// aptScript installs the packages given as its arguments and removes
// apt's and dpkg's logs and caches in the same step. It holds no user input:
// package names reach apt-get only as "$@".
const aptScript = `set -eu
apt-get update
apt-get install -y --no-install-recommends "$@"
rm -rf /var/log/apt /var/log/dpkg.log /var/log/alternatives.log /var/cache/ldconfig/aux-cache /var/cache/debconf/*-old`

// venvScript makes the virtual environment with the interpreter given as
// its first argument. When the base image lacks that interpreter, or the
// interpreter cannot make virtual environments (Debian's python3 without
// python3-venv), it fails with a message that names the interpreter, the
// Python interpreters on the base image's PATH, and what to change. The
// checks write nothing, so the layer is what "$1" -m venv alone makes.
const venvScript = `set -eu
py="$1"
found=$(echo $(ls $(echo "$PATH" | tr : ' ') 2>/dev/null | grep -xE 'python3(\.[0-9]+)?' | sort -u)) || true
if ! command -v "$py" >/dev/null 2>&1; then
  echo "ispec: the base image has no $py to make the virtual environment ` + VenvDir + ` with (Python on its PATH: ${found:-none})." >&2
  echo "ispec: use a base_image with $py, install it with apt_packages, set python_version or python_exec to one it has, or leave out base_image so that python_version picks a Python base image." >&2
  exit 127
fi
if ! PYTHONDONTWRITEBYTECODE=1 "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "ispec: the base image's $py cannot make virtual environments: it lacks the venv or ensurepip module; on Debian or Ubuntu add python3-venv to apt_packages." >&2
  exit 127
fi
exec "$py" -m venv ` + VenvDir + `
`

// Input is what the graph of one platform needs besides the spec.
type Input struct {
	// Platform is the platform the image is built for.
	Platform ocispecs.Platform
	// Base is the base image reference; a digest reference pins it. It
	// is the name the image's config records.
	Base string
	// From, when set, is the image the graph starts from: Base resolved
	// to a digest (repository@digest), so that a build reads the base it
	// resolved even when the tag moves meanwhile. Empty: Base.
	From string
	// PipNetrc says whether a netrc file with index credentials is given
	// (BuildOptions.PipNetrc); the pip steps then mount it as a secret.
	PipNetrc bool
	// BaseConfig is the base image's config (JSON, as the registry serves
	// it). Its Env and WorkingDir apply to the build steps and its config
	// is the start of the image's. Nil means an empty config.
	BaseConfig []byte
	// Accounts are the base image's users (see Accounts); they must be
	// known when the image's user is to be created. The zero value is
	// unknown.
	Accounts Accounts
	// Linear makes the graph one chain, each step on the one before, as a
	// Dockerfile is. The default runs independent steps as branches of the
	// base joined with BuildKit's merge and diff operations (see Graph);
	// a worker without merge-op support needs Linear.
	Linear bool
}

// from is the image the graph starts from.
func (in Input) from() string {
	if in.From != "" {
		return in.From
	}
	return in.Base
}

// Step is one step of the recipe: a pure function from the state so far
// to the next state.
type Step struct {
	// Name is the step's name in progress output, errors and the image's
	// history.
	Name string
	// Apply adds the step to a state.
	Apply func(llb.State) llb.State

	// place is where the step runs in the merged graph.
	place placement
	// empty says the step adds no layer, only metadata (a layer's env).
	empty bool
	// meta, when set, applies the step's metadata (env) alone; Apply
	// applies it too. The merged graph applies it to the merge of the
	// branches, which keeps the base's metadata.
	meta func(llb.State) llb.State
}

// Graph returns the LLB graph of img for one platform: the base image and
// then Steps, most stable first, one layer each. Unless in.Linear is set,
// steps that do not depend on each other run in parallel branches (see
// mergedGraph); the image's layers and their order are the same either
// way. It does no I/O.
func Graph(img *spec.Image, in Input) (llb.State, error) {
	steps, err := Steps(img, in)
	if err != nil {
		return llb.State{}, err
	}
	base, err := parseConfig(in.BaseConfig)
	if err != nil {
		return llb.State{}, err
	}
	if _, err := imageEnv(img, base.Config.Env); err != nil {
		return llb.State{}, err
	}
	if planUser(img.Spec, base.Config.User, in.Accounts).create && !in.Accounts.Known() {
		return llb.State{}, fmt.Errorf("creating user %s: %w", userName(img.Spec), ErrAccountsUnknown)
	}
	st := llb.Image(in.from(), llb.Platform(in.Platform), llb.WithCustomName("[ispec] base "+in.Base))
	if len(in.BaseConfig) > 0 {
		if st, err = st.WithImageConfig(in.BaseConfig); err != nil {
			return llb.State{}, fmt.Errorf("reading base image config: %w", err)
		}
	}
	st = st.Platform(in.Platform).Dir("/")
	if st, err = withCUDAEnv(st, img.Spec, in.BaseConfig); err != nil {
		return llb.State{}, err
	}
	if !in.Linear {
		return mergedGraph(st, steps), nil
	}
	for _, s := range steps {
		st = s.Apply(st)
	}
	return st, nil
}

// Steps returns the steps that build img on its base, in order: apt
// packages, the Python virtual environment, the requirements file, the
// packages, the commands, the copied files and the source. Every step adds
// one layer. An image that runs as a non-root user gets it first, before
// the apt packages (see planUser and userStep), so that every later step
// sees it; the commands still run as root, and the copied files are owned
// by the user.
func Steps(img *spec.Image, in Input) ([]Step, error) {
	s := img.Spec
	// spec refuses conda_packages when it loads; channels alone install
	// nothing. This guards specs made in memory.
	if len(s.CondaPackages) > 0 {
		return nil, fmt.Errorf("conda_packages: conda is not supported by this builder yet")
	}
	base, err := parseConfig(in.BaseConfig)
	if err != nil {
		return nil, err
	}
	plat := platforms.Format(in.Platform)
	var steps []Step
	user := planUser(s, base.Config.User, in.Accounts)
	if user.own {
		steps = append(steps, userStep(user, workdir(s)))
	}
	owner := user.chown
	if owner == nil {
		owner = rootChown()
	}
	if len(s.AptPackages) > 0 {
		steps = append(steps, aptStep(s.AptPackages, plat))
	}
	if needsPython(img) {
		venv := venvStep(pythonExec(s), venvPath(base.Config.Env))
		if aptInstallsPython(s.AptPackages) {
			venv.place = onPrevious
		}
		steps = append(steps, venv)
		pip, err := newPipArgs(s)
		if err != nil {
			return nil, err
		}
		if pins, ok := img.PythonPins(plat); ok {
			if len(pins) > 0 {
				steps = append(steps, lockStep(img.PythonLock, pins, pip, plat, s.PipSecretMounts, in.PipNetrc))
			}
		} else if img.Requirements != nil {
			steps = append(steps, requirementsStep(img, pip, plat, s.PipSecretMounts, in.PipNetrc))
		}
		if len(s.Packages) > 0 && (img.PythonLock == nil || !img.PythonLock.Resolved) {
			steps = append(steps, packagesStep(pip, s.Packages, plat, s.PipSecretMounts, in.PipNetrc))
		}
	}
	wd := workdir(s)
	if len(s.Commands) > 0 {
		// A value that cannot be expanded (${VAR:?} with VAR unset) is
		// reported by Graph and Config, which know the base's env; Steps
		// also serves callers that do not (names, checks before the base
		// is resolved).
		env, _ := specEnv(s, envBeforeSpec(img, base.Config.Env))
		for i, cmd := range s.Commands {
			steps = append(steps, commandStep(i, cmd, env, wd, needsPython(img)))
		}
	}
	for i, t := range img.Copies {
		steps = append(steps, copyStep(localCopyName(i), t, path.Join(wd, s.Copy[i]), "copy "+s.Copy[i], owner))
	}
	if img.Source != nil {
		steps = append(steps, copyStep(localSource, img.Source, wd, "copy source_root "+s.SourceRoot, owner))
	}
	if len(s.Layers) > 0 {
		// A value that cannot be expanded is reported by Graph and Config.
		env, _ := imageEnv(img, base.Config.Env)
		lp, err := planLayers(img, in, env, owner)
		if err != nil {
			return nil, err
		}
		steps = append(steps, lp.steps...)
	}
	return steps, nil
}

// needsPython reports whether img gets a virtual environment.
func needsPython(img *spec.Image) bool {
	s := img.Spec
	return len(s.Packages) > 0 || img.Requirements != nil || s.PythonVersion != "" || s.PythonExec != ""
}

// pythonExec is the interpreter the virtual environment is made with.
func pythonExec(s *spec.Spec) string {
	switch {
	case s.PythonExec != "":
		return s.PythonExec
	case s.PythonVersion != "":
		return "python" + s.PythonVersion
	}
	return "python3"
}

// workdir is the image's working directory.
func workdir(s *spec.Spec) string {
	if s.Workdir == "" {
		return spec.DefaultWorkdir
	}
	return s.Workdir
}

func localCopyName(i int) string { return localCopyPrefix + strconv.Itoa(i) }

// cacheID names a cache mount; caches are kept apart per platform.
func cacheID(name, plat string) string { return "ispec-" + name + "-" + plat }

// reproducibleEnv is the env every RUN step gets, so that tools that honour
// SOURCE_DATE_EPOCH write the same bytes on every build.
func reproducibleEnv() llb.RunOption { return llb.AddEnv("SOURCE_DATE_EPOCH", "0") }

func aptStep(pkgs []string, plat string) Step {
	return namedAptStep("[ispec] apt-get install "+strings.Join(pkgs, " "), pkgs, plat)
}

// namedAptStep is aptStep with the step's name given.
func namedAptStep(name string, pkgs []string, plat string) Step {
	args := append([]string{"/bin/sh", "-c", aptScript, "ispec-apt"}, pkgs...)
	return Step{Name: name, place: fromBase, Apply: func(st llb.State) llb.State {
		return st.Run(
			llb.Args(args),
			reproducibleEnv(),
			llb.AddEnv("DEBIAN_FRONTEND", "noninteractive"),
			llb.AddMount("/var/lib/apt/lists", llb.Scratch(), llb.AsPersistentCacheDir(cacheID("apt-lists", plat), llb.CacheMountLocked)),
			llb.AddMount("/var/cache/apt", llb.Scratch(), llb.AsPersistentCacheDir(cacheID("apt-cache", plat), llb.CacheMountLocked)),
			llb.WithCustomName(name),
		).Root()
	}}
}

// venvStep makes the virtual environment; the steps after it have path
// (venvPath) as PATH.
func venvStep(python, path string) Step {
	name := "[ispec] " + python + " -m venv " + VenvDir
	meta := func(st llb.State) llb.State {
		return st.AddEnv("VIRTUAL_ENV", VenvDir).AddEnv("PATH", path)
	}
	return Step{Name: name, place: fromBase, meta: meta, Apply: func(st llb.State) llb.State {
		return meta(st.Run(
			llb.Args([]string{"/bin/sh", "-c", venvScript, "ispec-venv", python}),
			reproducibleEnv(),
			llb.WithCustomName(name),
		).Root())
	}}
}

// pipArgs is the start of every pip command line.
type pipArgs []string

func newPipArgs(s *spec.Spec) (pipArgs, error) {
	args := []string{VenvDir + "/bin/python", "-m", "pip", "install", "--no-compile"}
	if s.PipIndex != "" {
		args = append(args, "--index-url", s.PipIndex)
	}
	for _, u := range s.PipExtraIndexURL {
		args = append(args, "--extra-index-url", u)
	}
	extra, err := spec.SplitArgs(s.PipExtraArgs)
	if err != nil {
		return nil, fmt.Errorf("pip_extra_args: %w", err)
	}
	return append(args, extra...), nil
}

// pipOptions are the env, cache and secrets of every pip step.
func pipOptions(plat string, secrets []spec.SecretMount, netrc bool) []llb.RunOption {
	opts := []llb.RunOption{
		reproducibleEnv(),
		llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"),
		llb.AddEnv("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
		llb.AddEnv("PIP_NO_INPUT", "1"),
		llb.AddEnv("PIP_ROOT_USER_ACTION", "ignore"),
		llb.AddEnv("PIP_CACHE_DIR", "/root/.cache/pip"),
		llb.AddMount("/root/.cache/pip", llb.Scratch(), llb.AsPersistentCacheDir(cacheID("pip", plat), llb.CacheMountShared)),
	}
	if netrc {
		// pip's HTTP client reads index credentials from $NETRC; the file
		// exists only while the step runs and never enters a layer.
		opts = append(opts,
			llb.AddSecret(netrcPath, llb.SecretID(NetrcSecretID), llb.SecretFileOpt(0, 0, 0o400)),
			llb.AddEnv("NETRC", netrcPath))
	}
	return append(opts, secretMounts(secrets)...)
}

// NetrcSecretID is the BuildKit secret that carries BuildOptions.PipNetrc.
const NetrcSecretID = "ispec-pip-netrc"

// netrcPath is where the netrc secret is mounted during pip steps.
const netrcPath = "/run/secrets/ispec-pip-netrc"

// requirementsStep installs the requirements file with the files it
// includes (-r, -c) mounted beside it, as they were hashed.
func requirementsStep(img *spec.Image, pip pipArgs, plat string, secrets []spec.SecretMount, netrc bool) Step {
	name := "[ispec] pip install -r requirements"
	args := append(append([]string{}, pip...), "-r", path.Join(requirementsDir, img.RequirementsFile))
	return Step{Name: name, Apply: func(st llb.State) llb.State {
		opts := append(pipOptions(plat, secrets, netrc),
			llb.Args(args),
			llb.AddMount(requirementsDir, localState(localRequirements, img.Requirements, "requirements"), llb.Readonly),
			llb.WithCustomName(name),
		)
		return st.Run(opts...).Root()
	}}
}

func packagesStep(pip pipArgs, pkgs []string, plat string, secrets []spec.SecretMount, netrc bool) Step {
	name := "[ispec] pip install " + strings.Join(pkgs, " ")
	args := append(append([]string{}, pip...), pkgs...)
	return Step{Name: name, Apply: func(st llb.State) llb.State {
		opts := append(pipOptions(plat, secrets, netrc), llb.Args(args), llb.WithCustomName(name))
		return st.Run(opts...).Root()
	}}
}

// commandStep runs one of the spec's commands with env (specEnv's
// variables) set on top of the state's.
func commandStep(i int, cmd string, env []envVar, wd string, venv bool) Step {
	name := fmt.Sprintf("[ispec] commands[%d] %s", i, cmd)
	return Step{Name: name, Apply: func(st llb.State) llb.State {
		// The spec's env applies from the first command on, so that
		// changing it never re-runs the package steps.
		for _, v := range env {
			st = st.AddEnv(v.key, v.value)
		}
		opts := []llb.RunOption{
			llb.Args([]string{"/bin/sh", "-c", cmd}),
			llb.Dir(wd),
			reproducibleEnv(),
			llb.WithCustomName(name),
		}
		if venv {
			opts = append(opts, llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"))
		}
		return st.Run(opts...).Root()
	}}
}

// copyStep copies a tree to dest, every copied file owned by owner.
func copyStep(local string, t *spec.Tree, dest, what string, owner *llb.ChownOpt) Step {
	name := "[ispec] " + what
	single := len(t.Entries) == 1 && t.Entries[0].Path == "."
	src := "/"
	if single {
		src = "/" + singleFileName
	}
	return Step{Name: name, place: onTop, Apply: func(st llb.State) llb.State {
		in := localState(local, t, what)
		return st.File(llb.Copy(in, src, dest, &llb.CopyInfo{
			CopyDirContentsOnly: !single,
			CreateDestPath:      true,
			ChownOpt:            owner,
			CreatedTime:         epoch(),
		}), llb.WithCustomName(name))
	}}
}

// localState reads a tree through the session. Its unique id is derived
// from the local source's name and the tree's path on disk, as buildx does
// for a context folder, so that BuildKit sends only what changed since the
// last build of the same folder (the requirements tree and source_root may
// share a folder while holding different files).
func localState(name string, t *spec.Tree, what string) llb.State {
	sum := sha256.Sum256([]byte(name + "\x00" + t.Root))
	return llb.Local(name,
		llb.SharedKeyHint(name),
		llb.LocalUniqueID(hex.EncodeToString(sum[:16])),
		llb.WithCustomName("[ispec] load "+what),
	)
}

// secretID names the i-th pip secret mount. Ids are positions, never
// derived from the secret's contents.
func secretID(i int) string { return "ispec-pip-secret-" + strconv.Itoa(i) }

// layerSecretID names the j-th pip secret mount of layer i.
func layerSecretID(i, j int) string {
	return "ispec-layer-" + strconv.Itoa(i) + "-pip-secret-" + strconv.Itoa(j)
}

// secretMounts mounts each pip secret at its target, readable by root
// only, for the duration of one pip step.
func secretMounts(mounts []spec.SecretMount) []llb.RunOption {
	return secretMountsNamed(mounts, secretID)
}

// secretMountsNamed is secretMounts with the secrets' ids given by id. A
// mount with an env is given as that env variable instead, set in the
// step's process only (never in the image's env or a layer).
func secretMountsNamed(mounts []spec.SecretMount, id func(int) string) []llb.RunOption {
	var opts []llb.RunOption
	for i, m := range mounts {
		if m.Env != "" {
			opts = append(opts, llb.AddSecretWithDest(id(i), nil, llb.SecretAsEnvName(m.Env)))
			continue
		}
		opts = append(opts, llb.AddSecret(m.Target, llb.SecretID(id(i)), llb.SecretFileOpt(0, 0, 0o400)))
	}
	return opts
}

// parseConfig reads a base image config; nil gives an empty one.
func parseConfig(dt []byte) (ocispecs.Image, error) {
	var img ocispecs.Image
	if len(dt) == 0 {
		return img, nil
	}
	if err := json.Unmarshal(dt, &img); err != nil {
		return img, fmt.Errorf("reading base image config: %w", err)
	}
	return img, nil
}
