package builder

import (
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/ispec-dev/ispec/spec"
)

// envVar is one variable ispec sets in the image.
type envVar struct{ key, value string }

// flyteRichTracebacks is the variable flytekit's own images set to 0 so
// that a task's traceback reaches its log as plain text.
const flyteRichTracebacks = "FLYTE_SDK_RICH_TRACEBACKS"

// specEnv returns the variables ispec sets on top of before, the env as it
// stands before the spec's (the base image's, NVIDIA's, the virtual
// environment's), in the order they are set:
//
//   - PYTHONPATH at the working directory and FLYTE_SDK_RICH_TRACEBACKS=0,
//     as flytekit's ImageSpec builder sets them, unless the spec sets them;
//   - the spec's env, in key order, each value expanded as the one ENV
//     instruction flytekit's builder writes for it expands it: $VAR,
//     ${VAR}, ${VAR:-default}, ${VAR:+alt} and the other forms BuildKit's
//     Dockerfile frontend knows, quotes and backslash escapes, all against
//     before. A value never sees another spec variable nor ispec's own
//     defaults, just as the pairs of one ENV instruction see only the env
//     before it.
//
// The image's config and the commands get the same values.
func specEnv(s *spec.Spec, before []string) ([]envVar, error) {
	var vars []envVar
	if _, ok := s.Env["PYTHONPATH"]; !ok {
		vars = append(vars, envVar{"PYTHONPATH", workdir(s)})
	}
	if _, ok := s.Env[flyteRichTracebacks]; !ok {
		vars = append(vars, envVar{flyteRichTracebacks, "0"})
	}
	if envValue(before, "PATH") == "" {
		// As in a Dockerfile on a base that sets no PATH.
		before = append(append([]string{}, before...), "PATH="+defaultPath)
	}
	lex := shell.NewLex('\\')
	getter := shell.EnvsFromSlice(before)
	for _, k := range sortedKeys(s.Env) {
		v, _, err := lex.ProcessWord(s.Env[k], getter)
		if err != nil {
			return nil, fmt.Errorf("env.%s: expanding %q as Dockerfile ENV does: %w", k, s.Env[k], err)
		}
		vars = append(vars, envVar{k, v})
	}
	return vars, nil
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
		env = setEnv(env, v.key, v.value)
	}
	return env, nil
}
