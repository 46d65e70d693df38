package builder

import (
	"fmt"
	"sort"
	"strings"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ispec-dev/ispec/spec"
)

// Labels ispec sets on every image it builds, besides the
// org.opencontainers.image.* ones.
const (
	// LabelSpecHash is the full spec hash the tag is made from.
	LabelSpecHash = "dev.ispec.spec-hash"
	// LabelSpec is the canonical spec document that was hashed.
	LabelSpec = "dev.ispec.spec"
	// LabelVersion is the version of ispec that built the image.
	LabelVersion = "dev.ispec.version"
	// LabelRecipe is the build recipe version (spec.RecipeVersion).
	LabelRecipe = "dev.ispec.recipe"
)

// The org.opencontainers.image.* labels ispec sets.
const (
	labelCreated    = "org.opencontainers.image.created"
	labelBaseName   = "org.opencontainers.image.base.name"
	labelBaseDigest = "org.opencontainers.image.base.digest"
)

// ConfigInput is what the image config needs besides the spec and the base.
type ConfigInput struct {
	// BaseDigest is the digest the base reference resolved to; recorded in
	// the org.opencontainers.image.base.digest label when set.
	BaseDigest string
	// Version is the ispec version recorded in the dev.ispec.version label.
	Version string
	// PythonResolved is what a build whose Python requirements float
	// installed (name==version), recorded in the LabelPythonResolved
	// label. Nil: no label.
	PythonResolved []string
}

// Config returns the OCI image config of img for one platform, starting
// from the base image's config in in.BaseConfig:
//
//   - Env: the base's, then NVIDIA's when the spec names a CUDA version
//     (see cudaEnv), then VIRTUAL_ENV and the venv's bin first on PATH
//     when there is a virtual environment, then PYTHONPATH and
//     FLYTE_SDK_RICH_TRACEBACKS as flytekit sets them and the spec's env,
//     expanded as Dockerfile ENV does, which wins (see specEnv).
//   - Entrypoint: nil in the spec keeps the base's; a list replaces it (an
//     empty list clears it) and, as Docker does, clears the base's Cmd.
//   - WorkingDir: the spec's, or spec.DefaultWorkdir.
//   - User: the numeric uid:gid of the user the image runs as (see
//     planUser), or the base's.
//   - Labels: the base's, then the spec's, then org.opencontainers.image.*
//     and dev.ispec.* (which the spec cannot override), among them
//     LabelPythonResolved when ci.PythonResolved is set.
//   - Created and every new history entry at the Unix epoch, so that
//     rebuilds are identical.
//
// It does no I/O; rootfs is filled in when the image is exported.
func Config(img *spec.Image, in Input, ci ConfigInput) (ocispecs.Image, error) {
	base, err := parseConfig(in.BaseConfig)
	if err != nil {
		return ocispecs.Image{}, err
	}
	steps, err := Steps(img, in)
	if err != nil {
		return ocispecs.Image{}, err
	}
	s := img.Spec
	out := ocispecs.Image{
		Created:  epoch(),
		Platform: in.Platform,
		Config:   base.Config,
		RootFS:   ocispecs.RootFS{Type: "layers"},
		History:  append([]ocispecs.History{}, base.History...),
	}
	out.OSVersion, out.OSFeatures = base.OSVersion, base.OSFeatures

	if out.Config.Env, err = imageEnv(img, base.Config.Env); err != nil {
		return ocispecs.Image{}, err
	}
	if s.Entrypoint != nil {
		out.Config.Entrypoint = nil
		if len(s.Entrypoint) > 0 {
			out.Config.Entrypoint = append([]string{}, s.Entrypoint...)
		}
		out.Config.Cmd = nil
	}
	out.Config.WorkingDir = workdir(s)
	if len(s.Layers) > 0 {
		lp, err := planLayers(img, in, out.Config.Env, nil)
		if err != nil {
			return ocispecs.Image{}, err
		}
		out.Config.Env, out.Config.WorkingDir = lp.env, lp.workdir
	}
	if u := planUser(s, base.Config.User, in.Accounts); u.config != "" {
		out.Config.User = u.config
	}

	labels := map[string]string{}
	for k, v := range base.Config.Labels {
		labels[k] = v
	}
	for k, v := range s.Labels {
		labels[k] = v
	}
	labels[labelCreated] = epoch().Format("2006-01-02T15:04:05Z")
	labels[labelBaseName] = in.Base
	if ci.BaseDigest != "" {
		labels[labelBaseDigest] = ci.BaseDigest
	} else {
		delete(labels, labelBaseDigest)
	}
	labels[LabelSpecHash] = img.Identity.SpecHash
	labels[LabelSpec] = string(img.Document)
	labels[LabelRecipe] = spec.RecipeVersion
	if ci.Version != "" {
		labels[LabelVersion] = ci.Version
	} else {
		delete(labels, LabelVersion)
	}
	if ci.PythonResolved != nil {
		labels[LabelPythonResolved] = strings.Join(ci.PythonResolved, " ")
	} else {
		delete(labels, LabelPythonResolved)
	}
	out.Config.Labels = labels

	for _, st := range steps {
		out.History = append(out.History, ocispecs.History{
			Created:    epoch(),
			CreatedBy:  st.Name,
			Comment:    "ispec",
			EmptyLayer: st.empty,
		})
	}
	out.History = append(out.History, ocispecs.History{
		Created:    epoch(),
		CreatedBy:  "[ispec] image config",
		Comment:    "ispec",
		EmptyLayer: true,
	})
	return out, nil
}

// envValue returns the value of key in a KEY=VALUE list ("" when absent).
func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, _ := strings.Cut(env[i], "="); k == key {
			return v
		}
	}
	return ""
}

// setEnv sets key in a KEY=VALUE list: in place when present, else at the
// end.
func setEnv(env []string, key, value string) []string {
	kv := fmt.Sprintf("%s=%s", key, value)
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = kv
			return env
		}
	}
	return append(env, kv)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
