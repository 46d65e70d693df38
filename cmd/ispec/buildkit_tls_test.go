package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TLS settings for BuildKit that cannot work stop the command before any
// work, naming the setting (flag, environment or config file).
func TestBuildkitTLSSettings(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{
		"s.yaml":      "name: app\nregistry: 127.0.0.1:1/x\n",
		"notpem.crt":  "not a certificate\n",
		"config.yaml": "buildkit-addr: tcp://127.0.0.1:1\nbuildkit-ca: " + filepath.Join(t.TempDir(), "missing.crt") + "\n",
	})
	spec := filepath.Join(dir, "s.yaml")
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"cert without key", nil, []string{"build", "--buildkit-addr", "tcp://127.0.0.1:1", "--buildkit-cert", filepath.Join(dir, "notpem.crt"), spec},
			[]string{"buildkit-key", "needs its key"}},
		{"CA not PEM from the environment", map[string]string{"ISPEC_BUILDKIT_CA": filepath.Join(dir, "notpem.crt")}, []string{"build", spec},
			[]string{"buildkit-ca " + filepath.Join(dir, "notpem.crt"), "no PEM certificate"}},
		{"missing CA from the config file", nil, []string{"serve", "--config", filepath.Join(dir, "config.yaml")},
			[]string{"buildkit-ca", "missing.crt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			out, errOut, code := run(t, tc.args...)
			if code != exitInvalid || out != "" {
				t.Fatalf("exit %d out %q err %q, want 2", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
		})
	}
}
