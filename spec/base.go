package spec

import (
	"fmt"
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
	// ("cudnn8-", "cudnn-" or empty). Default DefaultCUDABase.
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

// cudaBase maps CUDA and cuDNN versions onto NVIDIA's tag scheme: CUDA 11
// and early 12 tags carry the cuDNN major ("11.8.0-cudnn8-runtime"), CUDA
// 12.4 and later ship one cuDNN and write just "cudnn-".
func cudaBase(tmpl, cuda, cudnn string) (string, error) {
	parts := strings.Split(cuda, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("cuda %q: the CUDA base image needs a full version such as \"12.4.1\" (or set base_image)", cuda)
	}
	var major, minor int
	fmt.Sscan(parts[0], &major)
	fmt.Sscan(parts[1], &minor)
	if major < 11 {
		return "", fmt.Errorf("cuda %q: no CUDA base image is known for CUDA before 11 (set base_image)", cuda)
	}
	tag := ""
	if cudnn != "" {
		cudnnMajor, _, _ := strings.Cut(cudnn, ".")
		switch {
		case major == 11 || (major == 12 && minor < 4):
			if cudnnMajor != "8" {
				return "", fmt.Errorf("cudnn %q: CUDA %s images ship cuDNN 8", cudnn, cuda)
			}
			tag = "cudnn8-"
		default:
			if cudnnMajor != "9" {
				return "", fmt.Errorf("cudnn %q: CUDA %s images ship cuDNN 9", cudnn, cuda)
			}
			tag = "cudnn-"
		}
	}
	r := strings.NewReplacer("{cuda}", cuda, "{cuda_major}", parts[0], "{cudnn}", tag)
	return NormalizeRef(r.Replace(tmpl)), nil
}
