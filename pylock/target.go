package pylock

import (
	"fmt"
	"strconv"
	"strings"
)

// Target is what a lock is installed for: one platform of the image and
// the Python of its virtual environment.
type Target struct {
	// Platform is a normalized platform, "linux/amd64".
	Platform string
	// Python is the image's Python version, "3.11" or "3.11.4"; empty when
	// the spec does not say. Markers on the Python version are then left
	// for pip to evaluate in the image, and only wheels for any Python 3
	// can be chosen.
	Python string
}

// machines maps architectures (with variants) to platform_machine and
// the wheel platform tag's architecture.
var machines = map[string]string{
	"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm/v7": "armv7l", "arm/v6": "armv6l",
	"arm/v5": "armv5l", "ppc64le": "ppc64le", "ppc64": "ppc64", "s390x": "s390x", "riscv64": "riscv64",
	"loong64": "loongarch64", "mips64le": "mips64", "mips64": "mips64", "mips": "mips", "mipsle": "mips",
}

// machine is the platform's platform_machine ("x86_64"), or "".
func (t Target) machine() string {
	_, arch, _ := strings.Cut(t.Platform, "/")
	if m, ok := machines[arch]; ok {
		return m
	}
	a, _, _ := strings.Cut(arch, "/")
	return machines[a]
}

// pyVersion splits the Python version into major, minor and whether it
// has a micro part.
func (t Target) pyVersion() (major, minor int, full, ok bool) {
	parts := strings.Split(t.Python, ".")
	if len(parts) < 2 {
		return 0, 0, false, false
	}
	maj, err1 := strconv.Atoi(parts[0])
	mnr, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, false, false
	}
	return maj, mnr, len(parts) >= 3, true
}

// Env is the marker environment of the target: Linux, CPython, the
// platform's machine and, when known, the Python version.
func (t Target) Env() Env {
	vars := map[string]string{
		"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux",
		"platform_python_implementation": "CPython", "implementation_name": "cpython",
		"python_implementation": "CPython",
	}
	if m := t.machine(); m != "" {
		vars["platform_machine"] = m
	}
	if maj, mnr, full, ok := t.pyVersion(); ok {
		vars["python_version"] = fmt.Sprintf("%d.%d", maj, mnr)
		if full {
			vars["python_full_version"] = t.Python
			vars["implementation_version"] = t.Python
		}
	}
	return Env{Vars: vars}
}

// wheelScore says whether a wheel file name fits the target and how well
// (higher is more specific, as pip prefers); 0 when it does not fit.
// ok is false when the name is not a wheel's.
func (t Target) wheelScore(file string) (score int, needsPython bool, ok bool) {
	if !strings.HasSuffix(file, ".whl") {
		return 0, false, false
	}
	parts := strings.Split(strings.TrimSuffix(file, ".whl"), "-")
	if len(parts) != 5 && len(parts) != 6 {
		return 0, false, false
	}
	pys, abis, plats := parts[len(parts)-3], parts[len(parts)-2], parts[len(parts)-1]
	platScore := 0
	for _, p := range strings.Split(plats, ".") {
		if s := t.platScore(p); s > platScore {
			platScore = s
		}
	}
	if platScore == 0 {
		return 0, false, true
	}
	best := 0
	for _, py := range strings.Split(pys, ".") {
		for _, abi := range strings.Split(abis, ".") {
			s, needs := t.pyScore(py, abi)
			if needs {
				needsPython = true
			}
			if s > best {
				best = s
			}
		}
	}
	if best == 0 {
		return 0, needsPython, true
	}
	return best*10 + platScore, needsPython, true
}

// platScore: 2 for a Linux tag of the target's machine, 1 for any.
func (t Target) platScore(p string) int {
	if p == "any" {
		return 1
	}
	m := t.machine()
	if m == "" || !strings.HasSuffix(p, "_"+m) {
		return 0
	}
	pre := strings.TrimSuffix(p, "_"+m)
	// glibc only: the images ispec builds on are Debian, Ubuntu and the
	// official python images.
	if pre == "linux" || pre == "manylinux1" || pre == "manylinux2010" || pre == "manylinux2014" || strings.HasPrefix(pre, "manylinux_") {
		return 2
	}
	return 0
}

// pyScore rates a python tag and ABI tag pair: 3 for this CPython's own
// ABI, 2 for the stable ABI, 1 for a pure-Python wheel; needs reports a
// tag that only a known Python version can judge.
func (t Target) pyScore(py, abi string) (score int, needs bool) {
	maj, mnr, _, known := t.pyVersion()
	switch {
	case abi == "none" && (py == "py3" || py == "py2.py3"):
		return 1, false
	case abi == "none" && strings.HasPrefix(py, "py3"):
		if !known {
			return 0, true
		}
		if n, err := strconv.Atoi(py[3:]); err == nil && maj == 3 && n <= mnr {
			return 1, false
		}
		return 0, false
	case strings.HasPrefix(py, "cp3"):
		if !known {
			return 0, true
		}
		n, err := strconv.Atoi(py[3:])
		if err != nil || maj != 3 {
			return 0, false
		}
		switch {
		case abi == fmt.Sprintf("cp%d%d", maj, mnr) && n == mnr:
			return 3, false
		case abi == "abi3" && n <= mnr:
			return 2, false
		case abi == "none" && n == mnr:
			return 1, false
		}
	}
	return 0, false
}
