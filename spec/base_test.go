package spec

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestCUDABaseTags(t *testing.T) {
	for _, tc := range []struct {
		cuda, cudnn string
		want        string
	}{
		{"11.8.0", "", "docker.io/nvidia/cuda:11.8.0-runtime-ubuntu22.04"},
		{"11.8.0", "8", "docker.io/nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"},
		{"11.7.1", "8.5", "docker.io/nvidia/cuda:11.7.1-cudnn8-runtime-ubuntu22.04"},
		{"12.1.1", "8", "docker.io/nvidia/cuda:12.1.1-cudnn8-runtime-ubuntu22.04"},
		{"12.3.2", "9", "docker.io/nvidia/cuda:12.3.2-cudnn9-runtime-ubuntu22.04"},
		{"12.3.2", "8", "docker.io/nvidia/cuda:12.3.2-cudnn8-runtime-ubuntu22.04"},
		{"12.4.1", "", "docker.io/nvidia/cuda:12.4.1-runtime-ubuntu22.04"},
		{"12.4.1", "9", "docker.io/nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"},
		{"12.6.3", "9.5", "docker.io/nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04"},
		{"13.0.0", "9", "docker.io/nvidia/cuda:13.0.0-cudnn-runtime-ubuntu22.04"},
	} {
		got, err := Defaults{}.ResolveBase(&Spec{Cuda: tc.cuda, Cudnn: tc.cudnn})
		if err != nil || got != tc.want {
			t.Errorf("cuda %s cudnn %q: %q, %v; want %q", tc.cuda, tc.cudnn, got, err, tc.want)
		}
	}
}

func TestCUDABaseTemplate(t *testing.T) {
	d := Defaults{CUDABase: "127.0.0.1:5000/stand-in/cuda:{cuda}-{cudnn}runtime-ubuntu22.04"}
	got, err := d.ResolveBase(&Spec{Cuda: "12.4.1", Cudnn: "9"})
	if want := "127.0.0.1:5000/stand-in/cuda:12.4.1-cudnn-runtime-ubuntu22.04"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	d = Defaults{CUDABase: "registry.example/cuda{cuda_major}:{cuda}"}
	got, err = d.ResolveBase(&Spec{Cuda: "11.8.0"})
	if want := "registry.example/cuda11:11.8.0"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
	// base_image wins over the template.
	got, err = d.ResolveBase(&Spec{Cuda: "11.8.0", BaseImage: BaseImage{Ref: "ubuntu:22.04"}})
	if want := "docker.io/library/ubuntu:22.04"; err != nil || got != want {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}
}

// TestCUDABaseErrors: versions the template cannot map fail at load time,
// naming the file and the field to change.
func TestCUDABaseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, tmpl string
		want            []string
	}{
		{"no patch", "cuda: \"12.4\"\n", "", []string{"s.yaml:2", "cuda:", "full version", "12.4.1"}},
		{"before 11", "cuda: \"10.2.89\"\n", "", []string{"s.yaml:2", "cuda:", "before 11", "base_image"}},
		{"cudnn 8 on 12.4", "cuda: \"12.4.1\"\ncudnn: \"8\"\n", "", []string{"s.yaml:3", "cudnn:", "ship cuDNN 9"}},
		{"cudnn 9 on 11", "cuda: \"11.8.0\"\ncudnn: \"9\"\n", "", []string{"s.yaml:3", "cudnn:", "ship cuDNN 8"}},
		{"unknown placeholder", "cuda: \"12.4.1\"\n", "nvidia/cuda:{cuda_version}-runtime", []string{"cuda:", "unknown placeholder", "{cuda_version}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture(t, map[string]string{"s.yaml": "name: a\n" + tc.doc})
			_, err := Load(context.Background(), filepath.Join(dir, "s.yaml"), Options{Defaults: Defaults{CUDABase: tc.tmpl}})
			if err == nil {
				t.Fatal("want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not match ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
