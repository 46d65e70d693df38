package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// validate says once which ImageSpec fields it ignores, and refuses what
// no build could do.
func TestValidateNoticesAndRefusals(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{
		"flyte.yaml": "name: app\nbuilder: envd\nregistry_config: cfg.json\n",
		"conda.yaml": "name: app\nconda_packages: [numpy]\n",
	})
	_, errOut, code := run(t, "validate", filepath.Join(dir, "flyte.yaml"))
	if code != 0 || strings.Count(errOut, "builder: \"envd\" is ignored") != 1 || !strings.Contains(errOut, "registry_config: ignored") {
		t.Errorf("validate flyte.yaml: exit %d, stderr:\n%s", code, errOut)
	}
	_, errOut, code = run(t, "validate", filepath.Join(dir, "conda.yaml"))
	if code != exitInvalid || !strings.Contains(errOut, "conda.yaml:2") || !strings.Contains(errOut, "conda_packages") {
		t.Errorf("validate conda.yaml: exit %d, stderr:\n%s", code, errOut)
	}
}

// With --progress json over several specs, each error object names its
// spec, and notices are JSON too.
func TestJSONErrorsNameTheirSpec(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{
		"a.yaml": "name: a\npackges: [x]\n",
		"b.yaml": "name: b\nconda_packages: [numpy]\nbuilder: envd\n",
	})
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	_, errOut, code := run(t, "build", "--progress", "json", a, b)
	if code != exitInvalid {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitInvalid, errOut)
	}
	specs := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		var obj map[string]map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("stderr line is not JSON: %q", line)
		}
		if e, ok := obj["error"]; ok {
			s, _ := e["spec"].(string)
			specs[s] = true
		}
	}
	if !specs[a] || !specs[b] {
		t.Errorf("error objects name specs %v, want %s and %s; stderr:\n%s", specs, a, b, errOut)
	}
}
