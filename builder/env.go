package builder

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/ispec-dev/ispec/spec"
)

// envVar is one variable ispec sets in the image.
type envVar struct{ key, value string }

// flyteRichTracebacks is the variable flytekit's own images set to 0 so
// that a task's traceback reaches its log as plain text.
const flyteRichTracebacks = "FLYTE_SDK_RICH_TRACEBACKS"

// The variables flytekit's builder sets around the spec's env.
const (
	envSSLCertDir = "SSL_CERT_DIR"
	envPythonPath = "PYTHONPATH"
	// envImageID is flytekit's image id variable; flytekit's builder sets
	// it last, and so does ispec when the spec's env names it.
	envImageID = "_F_IMG_ID"
	// sslCertDir is where flytekit's builder points SSL_CERT_DIR.
	sslCertDir = "/etc/ssl/certs"
)

// nvidiaLibPath is what flytekit's builder puts first on LD_LIBRARY_PATH
// after the spec's env, in case the NVIDIA runtime mounts its libraries.
const nvidiaLibPath = "/usr/local/nvidia/lib64"

// nvidiaPath is what flytekit's builder appends to PATH after the spec's
// env.
func nvidiaPath() []string { return []string{"/usr/local/nvidia/bin", "/usr/local/cuda/bin"} }

// specEnv returns the variables ispec sets on top of before, the env as it
// stands before the spec's (the base image's, NVIDIA's, the virtual
// environment's), in the order flytekit's builder sets them:
//
//   - FLYTE_SDK_RICH_TRACEBACKS=0, SSL_CERT_DIR=/etc/ssl/certs and
//     PYTHONPATH at the working directory, each unless the spec sets it;
//   - the spec's env but _F_IMG_ID, in key order, each value expanded as
//     the one ENV instruction flytekit's builder writes for it expands it:
//     $VAR, ${VAR}, ${VAR:-default}, ${VAR:+alt} and the other forms
//     BuildKit's Dockerfile frontend knows, quotes and backslash escapes,
//     all against before. A value never sees another spec variable nor
//     ispec's own defaults, just as the pairs of one ENV instruction see
//     only the env before it;
//   - PATH with /usr/local/nvidia/bin and /usr/local/cuda/bin appended and
//     LD_LIBRARY_PATH with /usr/local/nvidia/lib64 first, as the spec's
//     env left them, each folder only when it is not there yet;
//   - the spec's _F_IMG_ID, last.
//
// The image's config and the commands get the same values.
func specEnv(s *spec.Spec, before []string) ([]envVar, error) {
	var vars []envVar
	for _, d := range []envVar{{flyteRichTracebacks, "0"}, {envSSLCertDir, sslCertDir}, {envPythonPath, workdir(s)}} {
		if _, ok := s.Env[d.key]; !ok {
			vars = append(vars, d)
		}
	}
	if envValue(before, "PATH") == "" {
		// As in a Dockerfile on a base that sets no PATH.
		before = append(append([]string{}, before...), "PATH="+defaultPath)
	}
	lex := shell.NewLex('\\')
	getter := shell.EnvsFromSlice(before)
	after := append([]string{}, before...)
	var imageID *envVar
	for _, k := range sortedKeys(s.Env) {
		v, _, err := lex.ProcessWord(s.Env[k], getter)
		if err != nil {
			return nil, fmt.Errorf("env.%s: expanding %q as Dockerfile ENV does: %w", k, s.Env[k], err)
		}
		if k == envImageID {
			imageID = &envVar{k, v}
			continue
		}
		vars = append(vars, envVar{k, v})
		after = setEnv(after, k, v)
	}
	vars = append(vars,
		envVar{"PATH", appendDirs(envValue(after, "PATH"), nvidiaPath()...)},
		envVar{"LD_LIBRARY_PATH", prependDir(envValue(after, "LD_LIBRARY_PATH"), nvidiaLibPath)})
	if imageID != nil {
		vars = append(vars, *imageID)
	}
	return vars, nil
}

// appendDirs appends to a colon-separated path the dirs it lacks.
func appendDirs(p string, dirs ...string) string {
	have := strings.Split(p, ":")
	for _, d := range dirs {
		if slices.Contains(have, d) {
			continue
		}
		if p != "" {
			p += ":"
		}
		p += d
		have = append(have, d)
	}
	return p
}

// prependDir puts dir first on a colon-separated path that lacks it; an
// empty path becomes dir alone (no empty entry, which the dynamic linker
// would read as the current folder).
func prependDir(p, dir string) string {
	switch {
	case p == "":
		return dir
	case slices.Contains(strings.Split(p, ":"), dir):
		return p
	}
	return dir + ":" + p
}

// envBeforeSpec is the env the spec's env is expanded against: the base
// image's, then NVIDIA's, then the virtual environment's.
func envBeforeSpec(img *spec.Image, baseEnv []string) []string {
	env := cudaEnv(img.Spec, baseEnv)
	if needsPython(img) {
		env = setEnv(env, "VIRTUAL_ENV", VenvDir)
		env = setEnv(env, "PATH", venvPath(baseEnv))
	}
	return env
}

// venvPath is PATH with the virtual environment's bin first.
func venvPath(baseEnv []string) string {
	path := envValue(baseEnv, "PATH")
	if path == "" {
		path = defaultPath
	}
	return VenvDir + "/bin:" + path
}

// imageEnv is the env of the finished image, and of the commands: the
// env before the spec's (envBeforeSpec), then specEnv's variables.
func imageEnv(img *spec.Image, baseEnv []string) ([]string, error) {
	env := envBeforeSpec(img, baseEnv)
	vars, err := specEnv(img.Spec, env)
	if err != nil {
		return nil, err
	}
	for _, v := range vars {
		if v.key == envImageID {
			// Last, as flytekit's builder sets it, even when the base
			// (a flytekit image) has one.
			env = slices.DeleteFunc(env, func(e string) bool { return strings.HasPrefix(e, envImageID+"=") })
		}
		env = setEnv(env, v.key, v.value)
	}
	return env, nil
}
