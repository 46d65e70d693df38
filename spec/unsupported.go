package spec

import "fmt"

// IgnoredFields names the fields of s that ispec accepts, so that a Flyte
// ImageSpec file loads unchanged, but does not use, each with what ispec
// does instead. They are not part of the tag.
func IgnoredFields(s *Spec) []string {
	var out []string
	if s.Builder != "" && s.Builder != "ispec" {
		out = append(out, fmt.Sprintf("builder: %q is ignored: ispec builds every spec itself, with BuildKit", s.Builder))
	}
	if len(s.BuilderOptions) > 0 {
		out = append(out, "builder_options: ignored: ispec's build options are its flags and configuration (ispec build --help)")
	}
	if s.RegistryConfig != "" {
		out = append(out, "registry_config: ignored: ispec reads registry credentials from ~/.docker/config.json ($DOCKER_CONFIG) and its credential helpers")
	}
	return out
}
