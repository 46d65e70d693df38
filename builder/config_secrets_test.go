package builder

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestConfigCarriesNoSecrets: the image config (env, labels with the
// canonical spec, history) is published with the image; it holds neither
// the bytes of a secret nor where secrets are read from nor where the spec
// lies on the machine that builds.
func TestConfigCarriesNoSecrets(t *testing.T) {
	const secret = "s3cr3t-0f-the-pip-index"
	base := baseConfig(t, ocispecs.ImageConfig{Env: []string{"PATH=/usr/bin:/bin"}})
	for _, tc := range []struct {
		name    string
		doc     string
		files   map[string]string
		netrc   bool
		sources []string // secret source paths as written in the spec
	}{
		{name: "pip_secret_mounts", doc: "pip_secret_mounts: [{source: private/pip.conf, target: /etc/pip.conf}]\n",
			files: map[string]string{"private/pip.conf": "[global]\nindex-url = http://u:" + secret + "@127.0.0.1/simple\n"}, sources: []string{"private/pip.conf"}},
		{name: "several mounts and requirements", doc: "requirements: reqs.txt\npip_secret_mounts: [[keys/netrc.conf, /root/.netrc], {source: keys/token, target: /run/token}]\n",
			files:   map[string]string{"reqs.txt": "x==1\n", "keys/netrc.conf": "machine h login u password " + secret + "\n", "keys/token": secret + "\n"},
			sources: []string{"keys/netrc.conf", "keys/token"}},
		{name: "a layer's pip_secret_mounts", doc: "pip_secret_mounts: [[top.conf, /etc/pip.conf]]\nlayers:\n  - packages: [b]\n    pip_secret_mounts: [{source: keys/layer-netrc, target: /root/.netrc}]\n  - copy: [{src: keys, dst: /keys}]\n",
			files:   map[string]string{"top.conf": secret, "keys/layer-netrc": "machine h login u password " + secret + "\n", "keys/readme": "r\n"},
			sources: []string{"top.conf", "keys/layer-netrc"}},
		{name: "netrc from the configuration", doc: "pip_index: http://127.0.0.1:1/simple\n", netrc: true},
		{name: "netrc and mounts with commands", doc: "pip_secret_mounts: [{source: pip.conf, target: /etc/pip.conf}]\ncommands: [\"true\"]\nsource_root: src\n",
			files: map[string]string{"pip.conf": secret, "src/app.py": "print(1)\n"}, netrc: true, sources: []string{"pip.conf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img := loadSpecIn(t, dir, "name: x\nbase_image: "+testBase+"\npackages: [\"a==1\"]\n"+tc.doc, tc.files)
			in := Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base, PipNetrc: tc.netrc}
			cfg, err := Config(img, in, ConfigInput{BaseDigest: "sha256:abc", Version: "v1"})
			if err != nil {
				t.Fatal(err)
			}
			dt, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			published := string(dt)
			forbidden := []string{secret, dir, filepath.Base(filepath.Dir(dir)), NetrcSecretID, netrcPath, "secret"}
			for _, s := range tc.sources {
				forbidden = append(forbidden, s, filepath.Join(dir, s))
			}
			for _, f := range forbidden {
				if strings.Contains(published, f) {
					t.Errorf("the image config contains %q:\n%s", f, published)
				}
			}
			// What a user reads there: the spec that was hashed, its hash,
			// one history entry per step.
			if cfg.Config.Labels[LabelSpec] != string(img.Document) || cfg.Config.Labels[LabelSpecHash] != img.Identity.SpecHash {
				t.Errorf("labels = %v", cfg.Config.Labels)
			}
			steps, _ := Steps(img, in)
			if len(cfg.History) != len(steps)+1 {
				t.Errorf("history has %d entries, want one per step (%d) and the config", len(cfg.History), len(steps))
			}
		})
	}
}
