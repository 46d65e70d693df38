package builder

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/ispec-dev/ispec/spec"
)

// Mount points of a layer's files while its step runs.
const (
	layerWheelsDir = "/run/ispec/wheels"
	layerUVDir     = "/run/ispec/uv-project"
)

// pipLayerScript runs pip (its arguments after the first two) and then
// fails when pip changed the version of a package that was installed
// before it ran (an earlier layer's), unless the first argument is "1"
// (the layer's allow_changes). The second argument names the layer in the
// message. pip, setuptools and wheel (the venv's own tools) are not
// checked. It holds no user input.
const pipLayerScript = `import importlib, importlib.metadata as md, re, subprocess, sys
def installed():
    importlib.invalidate_caches()
    out = {}
    for d in md.distributions():
        n = d.metadata["Name"]
        if n:
            out[re.sub(r"[-_.]+", "-", n).lower()] = d.version
    return out
allow, what, cmd = sys.argv[1] == "1", sys.argv[2], sys.argv[3:]
before = installed()
rc = subprocess.call(cmd)
if rc != 0:
    sys.exit(rc)
if allow:
    sys.exit(0)
after = installed()
changed = [(n, v, after.get(n)) for n, v in sorted(before.items()) if n not in ("pip", "setuptools", "wheel") and after.get(n) != v]
for n, a, b in changed:
    print("ispec: %s changes %s %s, installed by an earlier layer, to %s" % (what, n, a, b or "nothing"), file=sys.stderr)
if changed:
    print("ispec: pin the earlier version in %s, install both in one layer, or set allow_changes: true on %s" % (what, what), file=sys.stderr)
    sys.exit(1)
`

// uvScript runs uv sync in the project folder with the image's uv,
// installing the locked dependencies (not the project) into the virtual
// environment. It holds no user input.
const uvScript = `set -eu
if ! command -v uv >/dev/null 2>&1; then
  echo "ispec: $1 needs uv in the image: install it in an earlier layer (packages: [uv]) or use a base image that has it." >&2
  exit 127
fi
exec uv sync --frozen --no-install-project --no-dev --python ` + VenvDir + `/bin/python
`

// layerPlan is what a spec's layers add after the flat fields' steps:
// one step per item (plus the virtual environment before the first
// Python layer when the flat fields made none), the env and working
// directory they leave for the image config.
type layerPlan struct {
	steps   []Step
	env     []string
	workdir string
}

// planLayers turns img's layers into steps, strictly one after the other:
// each item is one layer built on the one before, so that a change in one
// rebuilds it and those after it, never one before. env is the image's env
// after the flat fields (imageEnv); env and workdir items add no layer
// (their steps are empty, as Dockerfile ENV and WORKDIR are).
func planLayers(img *spec.Image, in Input, env []string, owner *llb.ChownOpt) (layerPlan, error) {
	s := img.Spec
	p := layerPlan{env: append([]string{}, env...), workdir: workdir(s)}
	if len(s.Layers) == 0 {
		return p, nil
	}
	plat := platforms.Format(in.Platform)
	venv := needsPython(img)
	for i, l := range s.Layers {
		field := spec.LayerField(i)
		var lt *spec.LayerTrees
		if i < len(img.Layers) {
			lt = img.Layers[i]
		}
		if l.Kind.Python() && !venv {
			venv = true
			p.steps = append(p.steps, withEnv(venvStep(pythonExec(s), venvPath(p.env)), p.env, ""))
			p.env = setEnv(p.env, "VIRTUAL_ENV", VenvDir)
			p.env = setEnv(p.env, "PATH", VenvDir+"/bin:"+envValue(p.env, "PATH"))
		}
		name := "[ispec] " + field + " " + string(l.Kind)
		var st Step
		switch l.Kind {
		case spec.LayerApt:
			st = namedAptStep(name+" "+strings.Join(l.AptPackages, " "), l.AptPackages, plat)
		case spec.LayerPackages, spec.LayerRequirements, spec.LayerWheels:
			pip, err := layerPipArgs(s, l)
			if err != nil {
				return p, fmt.Errorf("%s: %w", field, err)
			}
			st = pipLayerStep(name, field, i, l, lt, pip, plat, s.PipSecretMounts, in.PipNetrc)
		case spec.LayerUVProject:
			if lt == nil || lt.Pyproject == nil || lt.UVLock == nil {
				return p, fmt.Errorf("%s: the uv project's files were not loaded", field)
			}
			st = uvStep(name, field, i, lt, plat)
		case spec.LayerCommands:
			st = layerCommandsStep(name, l.Commands, p.workdir, venv)
		case spec.LayerCopy:
			if lt == nil || len(lt.Copies) != len(l.Copy) {
				return p, fmt.Errorf("%s: the copied files were not loaded", field)
			}
			st = layerCopyStep(name, i, l.Copy, lt.Copies, p.workdir, owner)
		case spec.LayerEnv:
			before := append([]string{}, p.env...)
			for _, k := range sortedKeys(l.Env) {
				v, err := expandEnv(l.Env[k], before)
				if err != nil {
					return p, fmt.Errorf("%s.env.%s: expanding %q as Dockerfile ENV does: %w", field, k, l.Env[k], err)
				}
				p.env = setEnv(p.env, k, v)
			}
			st = Step{Name: name + " " + strings.Join(sortedKeys(l.Env), " "), empty: true, Apply: func(st llb.State) llb.State { return st }}
		case spec.LayerWorkdir:
			p.workdir = l.Workdir
			wd := l.Workdir
			st = Step{Name: name + " " + wd, Apply: func(st llb.State) llb.State {
				// As Dockerfile WORKDIR: the folder exists in the image.
				return st.File(llb.Mkdir(wd, 0o755, llb.WithParents(true), llb.WithCreatedTime(*epoch())), llb.WithCustomName(name+" "+wd))
			}}
		default:
			return p, fmt.Errorf("%s: unknown layer kind %q", field, l.Kind)
		}
		p.steps = append(p.steps, withEnv(st, p.env, p.workdir))
	}
	return p, nil
}

// withEnv makes a layer step run with the env (and working directory,
// when given) the layers before it left.
func withEnv(s Step, env []string, wd string) Step {
	apply := s.Apply
	s.place = onPrevious
	s.Apply = func(st llb.State) llb.State {
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			st = st.AddEnv(k, v)
		}
		if wd != "" {
			st = st.Dir(wd)
		}
		return apply(st)
	}
	return s
}

// layerPipArgs is the pip command line of a pip layer: the layer's own
// pip options, each defaulting to the spec's flat one, and --pre.
func layerPipArgs(s *spec.Spec, l spec.Layer) (pipArgs, error) {
	o := *s
	if l.Pip.Index != "" {
		o.PipIndex = l.Pip.Index
	}
	if len(l.Pip.ExtraIndexURL) > 0 {
		o.PipExtraIndexURL = l.Pip.ExtraIndexURL
	}
	if l.Pip.ExtraArgs != "" {
		o.PipExtraArgs = l.Pip.ExtraArgs
	}
	args, err := newPipArgs(&o)
	if err != nil {
		return nil, err
	}
	if l.Pip.Pre {
		args = append(args, "--pre")
	}
	return args, nil
}

// pipLayerStep installs a pip layer's packages, requirements file or
// wheels into the virtual environment, through pipLayerScript so that a
// change to an earlier layer's package fails the layer. The spec's pip
// secrets (secrets, netrc) are mounted, and the layer's own, in this
// step only.
func pipLayerStep(name, field string, i int, l spec.Layer, lt *spec.LayerTrees, pip pipArgs, plat string, secrets []spec.SecretMount, netrc bool) Step {
	var what []string
	var mounts []llb.RunOption
	switch l.Kind {
	case spec.LayerPackages:
		what = l.Packages
	case spec.LayerRequirements:
		what = []string{"-r", path.Join(requirementsDir, lt.RequirementsFile)}
		mounts = append(mounts, llb.AddMount(requirementsDir, localState(layerLocal(i, "requirements"), lt.Requirements, field+" requirements"), llb.Readonly))
	case spec.LayerWheels:
		for _, w := range lt.WheelFiles() {
			what = append(what, path.Join(layerWheelsDir, w))
		}
		mounts = append(mounts, llb.AddMount(layerWheelsDir, localState(layerLocal(i, "wheels"), lt.Wheels, field+" python_wheels"), llb.Readonly))
	}
	allow := "0"
	if l.Pip.AllowChanges {
		allow = "1"
	}
	args := append([]string{VenvDir + "/bin/python", "-c", pipLayerScript, allow, field}, pip...)
	args = append(args, what...)
	shown := name + " " + strings.Join(what, " ")
	return Step{Name: shown, Apply: func(st llb.State) llb.State {
		opts := append(pipOptions(plat, secrets, netrc), secretMountsNamed(l.Pip.SecretMounts, func(j int) string { return layerSecretID(i, j) })...)
		opts = append(opts, mounts...)
		opts = append(opts, llb.Args(args), llb.WithCustomName(shown))
		return st.Run(opts...).Root()
	}}
}

// uvStep installs a uv project's locked dependencies into the virtual
// environment with the image's uv.
func uvStep(name, field string, i int, lt *spec.LayerTrees, plat string) Step {
	return Step{Name: name, Apply: func(st llb.State) llb.State {
		proj := llb.Scratch().
			File(llb.Copy(localState(layerLocal(i, "pyproject"), lt.Pyproject, field+" pyproject"), "/"+singleFileName, "/pyproject.toml", &llb.CopyInfo{CreatedTime: epoch()})).
			File(llb.Copy(localState(layerLocal(i, "uvlock"), lt.UVLock, field+" uvlock"), "/"+singleFileName, "/uv.lock", &llb.CopyInfo{CreatedTime: epoch()}))
		return st.Run(
			llb.Args([]string{"/bin/sh", "-c", uvScript, "ispec-uv", field}),
			llb.Dir(layerUVDir),
			reproducibleEnv(),
			llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"),
			llb.AddEnv("UV_PROJECT_ENVIRONMENT", VenvDir),
			llb.AddEnv("UV_CACHE_DIR", "/root/.cache/uv"),
			llb.AddEnv("UV_COMPILE_BYTECODE", "0"),
			llb.AddMount("/root/.cache/uv", llb.Scratch(), llb.AsPersistentCacheDir(cacheID("uv", plat), llb.CacheMountShared)),
			llb.AddMount(layerUVDir, proj),
			llb.WithCustomName(name),
		).Root()
	}}
}

// layerCommandsStep runs a commands item's commands in one shell, in
// order, stopping at the first that fails: one layer.
func layerCommandsStep(name string, cmds []string, wd string, venv bool) Step {
	script := strings.Join(cmds, "\n")
	shown := name + " " + strings.Join(cmds, "; ")
	return Step{Name: shown, Apply: func(st llb.State) llb.State {
		opts := []llb.RunOption{
			llb.Args([]string{"/bin/sh", "-ec", script}),
			llb.Dir(wd),
			reproducibleEnv(),
			llb.WithCustomName(shown),
		}
		if venv {
			// As the flat commands: no .pyc files written beside the
			// packages of earlier layers.
			opts = append(opts, llb.AddEnv("PYTHONDONTWRITEBYTECODE", "1"))
		}
		return st.Run(opts...).Root()
	}}
}

// layerCopyStep copies a copy item's pairs in one file operation: one
// layer. A relative dst is under the working directory; a folder's
// contents go into dst; a file goes to dst, or into it when dst ends
// with a slash.
func layerCopyStep(name string, i int, pairs []spec.CopyPair, trees []*spec.Tree, wd string, owner *llb.ChownOpt) Step {
	shown := name
	for _, p := range pairs {
		shown += " " + p.Src + ":" + p.Dst
	}
	return Step{Name: shown, Apply: func(st llb.State) llb.State {
		var fa *llb.FileAction
		for j, p := range pairs {
			t := trees[j]
			single := len(t.Entries) == 1 && t.Entries[0].Path == "."
			src, dst := "/", p.Dst
			if !path.IsAbs(dst) {
				dst = path.Join(wd, dst)
				if strings.HasSuffix(p.Dst, "/") {
					dst += "/"
				}
			}
			if single {
				src = "/" + singleFileName
				if strings.HasSuffix(dst, "/") {
					dst += path.Base(p.Src)
				}
			}
			in := localState(layerLocal(i, "copy-"+strconv.Itoa(j)), t, p.Src)
			info := &llb.CopyInfo{CopyDirContentsOnly: !single, CreateDestPath: true, ChownOpt: owner, CreatedTime: epoch()}
			if fa == nil {
				fa = llb.Copy(in, src, dst, info)
			} else {
				fa = fa.Copy(in, src, dst, info)
			}
		}
		return st.File(fa, llb.WithCustomName(shown))
	}}
}

// layerLocal names a layer's local source: "layer-2-wheels".
func layerLocal(i int, what string) string { return "layer-" + strconv.Itoa(i) + "-" + what }

// expandEnv expands an env value as Dockerfile ENV does, against env.
func expandEnv(v string, env []string) (string, error) {
	out, _, err := shell.NewLex('\\').ProcessWord(v, shell.EnvsFromSlice(env))
	return out, err
}

// layerTreesByLocal lists the trees of img's layers by their local
// source's name (see LocalMounts).
func layerTreesByLocal(img *spec.Image) map[string]*spec.Tree {
	m := map[string]*spec.Tree{}
	for i, lt := range img.Layers {
		if lt.Requirements != nil {
			m[layerLocal(i, "requirements")] = lt.Requirements
		}
		if lt.Wheels != nil {
			m[layerLocal(i, "wheels")] = lt.Wheels
		}
		if lt.Pyproject != nil {
			m[layerLocal(i, "pyproject")] = lt.Pyproject
		}
		if lt.UVLock != nil {
			m[layerLocal(i, "uvlock")] = lt.UVLock
		}
		for j, t := range lt.Copies {
			m[layerLocal(i, "copy-"+strconv.Itoa(j))] = t
		}
	}
	return m
}
