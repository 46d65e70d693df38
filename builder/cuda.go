package builder

import (
	"slices"
	"strings"

	"github.com/moby/buildkit/client/llb"

	"github.com/ispec-dev/ispec/spec"
)

// nvidiaLibDirs are where the NVIDIA container runtime mounts the driver's
// libraries; they must be on LD_LIBRARY_PATH.
var nvidiaLibDirs = []string{"/usr/local/nvidia/lib", "/usr/local/nvidia/lib64"}

// cudaEnvKeys are the variables cudaEnv sets, in the order it sets them.
var cudaEnvKeys = []string{
	"NVIDIA_VISIBLE_DEVICES",
	"NVIDIA_DRIVER_CAPABILITIES",
	"NVIDIA_REQUIRE_CUDA",
	"CUDA_VERSION",
	"LD_LIBRARY_PATH",
}

// cudaEnv returns env (the base image's) with NVIDIA's env for a spec that
// names a CUDA version, as NVIDIA's own images set it:
//
//   - NVIDIA_VISIBLE_DEVICES=all and NVIDIA_DRIVER_CAPABILITIES=compute,utility,
//     unless the base sets them;
//   - NVIDIA_REQUIRE_CUDA=cuda>=MAJOR.MINOR, unless the base requires the
//     same CUDA version already (NVIDIA's images add driver constraints,
//     which are kept);
//   - CUDA_VERSION, the spec's;
//   - LD_LIBRARY_PATH: the base's, then NVIDIA's driver folders it lacks.
//
// It returns a new slice; a spec without cuda gets a copy of env. The
// spec's own env is applied later and wins.
func cudaEnv(s *spec.Spec, env []string) []string {
	env = append([]string{}, env...)
	if s.Cuda == "" {
		return env
	}
	if envValue(env, "NVIDIA_VISIBLE_DEVICES") == "" {
		env = setEnv(env, "NVIDIA_VISIBLE_DEVICES", "all")
	}
	if envValue(env, "NVIDIA_DRIVER_CAPABILITIES") == "" {
		env = setEnv(env, "NVIDIA_DRIVER_CAPABILITIES", "compute,utility")
	}
	parts := strings.SplitN(s.Cuda, ".", 3)
	require := "cuda>=" + parts[0]
	if len(parts) > 1 {
		require += "." + parts[1]
	}
	if have := envValue(env, "NVIDIA_REQUIRE_CUDA"); have != require && !strings.HasPrefix(have, require+" ") {
		env = setEnv(env, "NVIDIA_REQUIRE_CUDA", require)
	}
	env = setEnv(env, "CUDA_VERSION", s.Cuda)
	var dirs []string
	if p := envValue(env, "LD_LIBRARY_PATH"); p != "" {
		dirs = strings.Split(p, ":")
	}
	for _, d := range nvidiaLibDirs {
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return setEnv(env, "LD_LIBRARY_PATH", strings.Join(dirs, ":"))
}

// withCUDAEnv gives every step after the base NVIDIA's env (see cudaEnv),
// so that commands see what the image's config will say.
func withCUDAEnv(st llb.State, s *spec.Spec, baseConfig []byte) (llb.State, error) {
	if s.Cuda == "" {
		return st, nil
	}
	base, err := parseConfig(baseConfig)
	if err != nil {
		return st, err
	}
	env := cudaEnv(s, base.Config.Env)
	for _, k := range cudaEnvKeys {
		st = st.AddEnv(k, envValue(env, k))
	}
	return st, nil
}
