package spec

import (
	"fmt"
	"strings"

	"github.com/containerd/platforms"
)

// knownArchs are the architectures a linux image can be built for, with
// the variants each accepts after normalization ("" is the plain one).
// Aliases (x86_64, aarch64, armhf, i386, ...) are normalized to these
// before the check.
var knownArchs = []struct {
	arch     string
	variants []string
}{
	{"386", []string{""}},
	{"amd64", []string{"", "v2", "v3", "v4"}},
	{"arm", []string{"v5", "v6", "v7", "v8"}},
	{"arm64", []string{"", "v8.1", "v8.2", "v8.3", "v8.4", "v8.5", "v8.6", "v8.7", "v8.8", "v8.9", "v9", "v9.1", "v9.2", "v9.3", "v9.4", "v9.5"}},
	{"loong64", []string{""}},
	{"mips", []string{""}},
	{"mipsle", []string{""}},
	{"mips64", []string{""}},
	{"mips64le", []string{""}},
	{"ppc64", []string{""}},
	{"ppc64le", []string{""}},
	{"riscv64", []string{""}},
	{"s390x", []string{""}},
}

// knownArchList is the architectures for error messages.
func knownArchList() string {
	names := make([]string, len(knownArchs))
	for i, a := range knownArchs {
		names[i] = a.arch
	}
	return strings.Join(names, ", ")
}

// parsePlatform parses and normalizes a platform the way containerd does
// (platforms.Parse, then platforms.Normalize): case folded, aliases
// resolved (x86_64 → amd64, aarch64 → arm64, arm64/v8 → arm64, arm →
// arm/v7), so that one platform has one spelling. It returns the
// os/arch[/variant] form, or a message saying what is wrong.
func parsePlatform(p string) (string, string) {
	t := strings.TrimSpace(p)
	if t == "" || !strings.Contains(t, "/") || strings.ContainsAny(t, "()+") {
		return "", fmt.Sprintf("%q is not a platform; expected os/arch[/variant] such as linux/amd64", p)
	}
	pl, err := platforms.Parse(t)
	if err != nil {
		return "", fmt.Sprintf("%q is not a platform; expected os/arch[/variant] such as linux/amd64", p)
	}
	pl = platforms.Normalize(pl)
	if pl.OS != "linux" {
		return "", fmt.Sprintf("%q: only linux images can be built", p)
	}
	for _, a := range knownArchs {
		if a.arch != pl.Architecture {
			continue
		}
		for _, v := range a.variants {
			if v == pl.Variant {
				return platforms.Format(pl), ""
			}
		}
		var vs []string
		for _, v := range a.variants {
			if v != "" {
				vs = append(vs, v)
			}
		}
		return "", fmt.Sprintf("%q: unknown variant %q of %s; known variants: %s", p, pl.Variant, a.arch, strings.Join(vs, ", "))
	}
	return "", fmt.Sprintf("%q: unknown architecture %q; known architectures: %s (aliases such as x86_64 and aarch64 are accepted)", p, pl.Architecture, knownArchList())
}

// NormalizePlatform returns the one spelling of a valid platform
// (linux/x86_64 and Linux/AMD64 are linux/amd64, linux/aarch64 and
// linux/arm64/v8 are linux/arm64). A platform that does not parse is
// returned trimmed.
func NormalizePlatform(p string) string {
	if n, msg := parsePlatform(p); msg == "" {
		return n
	}
	return strings.TrimSpace(p)
}

func checkPlatforms(c *collector, ps []string) {
	for i, p := range ps {
		if _, msg := parsePlatform(p); msg != "" {
			c.add(0, fmt.Sprintf("platform[%d]", i), "%s", msg)
		}
	}
}
