package spec

import (
	"fmt"
	"path"
	"strings"
)

// lockFileRequirements returns why a requirements path that names a Python
// lock file cannot be read yet, or "" for a requirements file. flytekit
// accepts uv.lock and poetry.lock there; read as a pip requirements file,
// each would give a page of PEP 508 errors.
func lockFileRequirements(p string) string {
	base := path.Base(strings.ReplaceAll(p, `\`, "/"))
	var export string
	switch {
	case base == "uv.lock":
		export = "uv export --format requirements-txt --no-dev --no-emit-project > requirements.txt"
	case base == "poetry.lock":
		export = "poetry export --format requirements.txt --output requirements.txt"
	case base == "pylock.toml" || (strings.HasPrefix(base, "pylock.") && strings.HasSuffix(base, ".toml")):
		export = "uv export --format requirements-txt > requirements.txt (from the project that wrote it)"
	default:
		return ""
	}
	return fmt.Sprintf("%q is a lock file; ispec reads pip requirements files only (lock files are planned, see docs/lockfile.md): export it with `%s` and name that file", p, export)
}

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
