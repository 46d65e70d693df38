package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Defaults are the choices a spec leaves to the configuration. Whatever
// they decide about an image is part of its hash, because the base they
// resolve to is.
type Defaults struct {
	// BaseImage is the base of a spec that names no base image, Python
	// version or CUDA version. Default DefaultBaseImage.
	BaseImage string
	// PythonBase is the template of the base of a spec that names a Python
	// version and no base image; {python_version} is replaced. Default
	// DefaultPythonBase.
	PythonBase string
	// CUDABase is the template of the base of a spec that names a CUDA
	// version and no base image. {cuda} is the full CUDA version,
	// {cuda_major} its major version, {cudnn} the cuDNN tag part
	// ("cudnn8-", "cudnn9-", "cudnn-" or empty; see cudaBase). Default
	// DefaultCUDABase.
	CUDABase string
}

// The default base image templates.
const (
	DefaultBaseImage  = "docker.io/library/debian:bookworm-slim"
	DefaultPythonBase = "docker.io/library/python:{python_version}-slim-bookworm"
	DefaultCUDABase   = "docker.io/nvidia/cuda:{cuda}-{cudnn}runtime-ubuntu22.04"
)

func (d Defaults) withFallbacks() Defaults {
	if d.BaseImage == "" {
		d.BaseImage = DefaultBaseImage
	}
	if d.PythonBase == "" {
		d.PythonBase = DefaultPythonBase
	}
	if d.CUDABase == "" {
		d.CUDABase = DefaultCUDABase
	}
	return d
}

// ResolveBase returns the base image reference of a spec whose base is not
// another spec: its base_image, else the CUDA or Python template, else the
// default base. It fails when a template cannot express the versions given.
func (d Defaults) ResolveBase(s *Spec) (string, error) {
	d = d.withFallbacks()
	switch {
	case s.BaseImage.Ref != "":
		return NormalizeRef(s.BaseImage.Ref), nil
	case s.Cuda != "":
		return cudaBase(d.CUDABase, s.Cuda, s.Cudnn)
	case s.PythonVersion != "":
		return NormalizeRef(strings.ReplaceAll(d.PythonBase, "{python_version}", s.PythonVersion)), nil
	}
	return NormalizeRef(d.BaseImage), nil
}

// baseError is a base image that cannot be resolved, with the spec field
// that asked for it.
type baseError struct {
	field string
	msg   string
}

func (e *baseError) Error() string { return e.field + ": " + e.msg }

// cudaBase maps CUDA and cuDNN versions onto NVIDIA's tag scheme:
//
//   - CUDA 11 and 12.0 to 12.3 tags name the cuDNN major
//     ("11.8.0-cudnn8-runtime", "12.3.2-cudnn9-runtime"); CUDA 11 and 12.0
//     to 12.2 images ship cuDNN 8, 12.3 images cuDNN 8 or 9;
//   - CUDA 12.4 and later ship one cuDNN (9) and write just "cudnn-"
//     ("12.4.1-cudnn-runtime");
//   - without cudnn the tag has no cuDNN part ("12.4.1-runtime").
//
// The tags carry a full major.minor.patch version; anything else is an
// error naming the field, as is a template with an unknown placeholder.
func cudaBase(tmpl, cuda, cudnn string) (string, error) {
	parts := strings.Split(cuda, ".")
	if len(parts) != 3 {
		return "", &baseError{"cuda", fmt.Sprintf("%q: the CUDA base image needs a full version such as \"12.4.1\" (or set base_image)", cuda)}
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return "", &baseError{"cuda", fmt.Sprintf("%q is not a CUDA version; expected major.minor.patch such as \"12.4.1\"", cuda)}
	}
	if major < 11 {
		return "", &baseError{"cuda", fmt.Sprintf("%q: no CUDA base image is known for CUDA before 11 (set base_image to a CUDA image)", cuda)}
	}
	tag := ""
	if cudnn != "" {
		cudnnMajor, _, _ := strings.Cut(cudnn, ".")
		var ship []string
		switch {
		case major == 11 || (major == 12 && minor < 3):
			ship = []string{"8"}
		case major == 12 && minor == 3:
			ship = []string{"8", "9"}
		default:
			ship = []string{"9"}
		}
		if !slices.Contains(ship, cudnnMajor) {
			return "", &baseError{"cudnn", fmt.Sprintf("%q: the CUDA %s base images ship cuDNN %s (or set base_image)", cudnn, cuda, strings.Join(ship, " or "))}
		}
		tag = "cudnn" + cudnnMajor + "-"
		if major > 12 || (major == 12 && minor >= 4) {
			tag = "cudnn-"
		}
	}
	r := strings.NewReplacer("{cuda}", cuda, "{cuda_major}", parts[0], "{cudnn}", tag)
	ref := r.Replace(tmpl)
	if strings.ContainsAny(ref, "{}") {
		return "", &baseError{"cuda", fmt.Sprintf("the CUDA base template %q has an unknown placeholder (known: {cuda}, {cuda_major}, {cudnn})", tmpl)}
	}
	return NormalizeRef(ref), nil
}
