package pylock

import (
	"fmt"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

type outFile struct {
	LockVersion string       `toml:"lock-version"`
	CreatedBy   string       `toml:"created-by"`
	Packages    []outPackage `toml:"packages"`
}

type outArtifact struct {
	Name   string            `toml:"name"`
	URL    string            `toml:"url"`
	Hashes map[string]string `toml:"hashes"`
}

type outPackage struct {
	Name    string        `toml:"name"`
	Version string        `toml:"version"`
	Marker  string        `toml:"marker,omitempty"`
	Wheels  []outArtifact `toml:"wheels,omitempty"`
	Sdist   *outArtifact  `toml:"sdist,omitempty"`
}

// WritePEP751 writes the pins of each platform as one PEP 751
// pylock.toml that pip and uv install: a package every platform pins
// alike has no marker; one that only some platforms pin (or pin to
// another artifact) gets a marker naming their machines
// (platform_machine == "x86_64" or ...). Platforms that share a machine
// must agree.
func WritePEP751(pins map[string][]Pin) ([]byte, error) {
	type key struct{ name, version, url, sha string }
	where := map[key][]string{}
	firsts := map[key]Pin{}
	var plats []string
	for p := range pins {
		plats = append(plats, p)
	}
	sort.Strings(plats)
	for _, p := range plats {
		for _, pin := range pins[p] {
			if pin.URL == "" {
				return nil, fmt.Errorf("%s %s has no URL: a pylock.toml names each artifact by URL", pin.Name, pin.Version)
			}
			k := key{pin.Name, pin.Version, pin.URL, pin.SHA256}
			where[k] = append(where[k], p)
			firsts[k] = pin
		}
	}
	var keys []key
	for k := range where {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		return keys[i].version+keys[i].url < keys[j].version+keys[j].url
	})
	out := outFile{LockVersion: "1.0", CreatedBy: "ispec"}
	for _, k := range keys {
		pin := firsts[k]
		op := outPackage{Name: pin.Name, Version: pin.Version}
		if len(where[k]) < len(plats) {
			var ms []string
			seen := map[string]bool{}
			for _, p := range where[k] {
				m := Target{Platform: p}.machine()
				if m == "" {
					return nil, fmt.Errorf("platform %s has no platform_machine to write a marker with", p)
				}
				if !seen[m] {
					seen[m] = true
					ms = append(ms, fmt.Sprintf("platform_machine == %q", m))
				}
			}
			op.Marker = strings.Join(ms, " or ")
		}
		a := outArtifact{Name: pin.File, URL: pin.URL, Hashes: map[string]string{"sha256": pin.SHA256}}
		if strings.HasSuffix(pin.File, ".whl") {
			op.Wheels = []outArtifact{a}
		} else {
			op.Sdist = &a
		}
		out.Packages = append(out.Packages, op)
	}
	data, err := toml.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("writing pylock.toml: %w", err)
	}
	return append([]byte("# Written by ispec lock --pylock. Install it with `uv pip install -r pylock.toml`, or name it as requirements in an ispec spec.\n"), data...), nil
}
