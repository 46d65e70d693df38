package spec

import "testing"

func TestRepository(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000/a/b:tag":       "127.0.0.1:5000/a/b",
		"docker.io/library/python:3":   "docker.io/library/python",
		"127.0.0.1:5000/a@sha256:abcd": "127.0.0.1:5000/a",
		"127.0.0.1:5000/a":             "127.0.0.1:5000/a",
	} {
		if got := Repository(in); got != want {
			t.Errorf("Repository(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNormalizeRequirement(t *testing.T) {
	for in, want := range map[string]string{
		"numpy>=1,<2":                    "numpy<2,>=1",
		"numpy<2,>=1":                    "numpy<2,>=1",
		"NumPy >= 1 , < 2":               "numpy<2,>=1",
		"numpy (>=1, <2)":                "numpy<2,>=1",
		"a == 1":                         "a==1",
		"a==1":                           "a==1",
		"a ==1, ==1":                     "a==1",
		"A_B.c ~= 1.4":                   "a-b-c~=1.4",
		"x>=1.0RC1":                      "x>=1.0rc1",
		"x===Foo-Bar":                    "x===Foo-Bar",
		"x != 1.*":                       "x!=1.*",
		"Requests[Socks, security]":      "requests[security,socks]",
		"requests[socks,socks]==2":       "requests[socks]==2",
		"requests [ Socks_Proxy ] >= 2":  "requests[socks-proxy]>=2",
		"x;python_version>='3.8'":        `x; python_version >= "3.8"`,
		"x ;  python_version >= \"3.8\"": `x; python_version >= "3.8"`,
		"x>=1 ; (os_name=='posix' or sys_platform == 'linux') and python_version<'3.12'": `x>=1; (os_name == "posix" or sys_platform == "linux") and python_version < "3.12"`,
		"x; platform_release == '5.15\"x'":                                               `x; platform_release == '5.15"x'`,
		"x; extra not in 'a b'":                                                          `x; extra not in "a b"`,
		"pkg@https://h/p-1.0.tar.gz":                                                     "pkg @ https://h/p-1.0.tar.gz",
		"pkg  @  https://h/p.whl ;python_version>'3'":                                    `pkg @ https://h/p.whl ; python_version > "3"`,
		"Pkg[B,a] @ git+https://h/r@v1":                                                  "pkg[a,b] @ git+https://h/r@v1",
		"  plain  ":                                                                      "plain",
	} {
		if got := normalizeRequirement(in); got != want {
			t.Errorf("normalizeRequirement(%q) = %q, want %q", in, got, want)
		}
		if msg := checkPEP508(normalizeRequirement(in)); msg != "" {
			t.Errorf("normalized %q is not valid: %s", normalizeRequirement(in), msg)
		}
	}
}

func TestNormalizePlatform(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64":      "linux/amd64",
		"linux/x86_64":     "linux/amd64",
		"linux/x86-64":     "linux/amd64",
		"Linux/AMD64":      "linux/amd64",
		"linux/amd64/v1":   "linux/amd64",
		"linux/amd64/v3":   "linux/amd64/v3",
		"linux/aarch64":    "linux/arm64",
		"linux/arm64/v8":   "linux/arm64",
		"LINUX/ARM64/V8":   "linux/arm64",
		"linux/arm64/8":    "linux/arm64",
		"linux/arm":        "linux/arm/v7",
		"linux/arm/v7":     "linux/arm/v7",
		"linux/armhf":      "linux/arm/v7",
		"linux/armel":      "linux/arm/v6",
		"linux/i386":       "linux/386",
		" linux/s390x ":    "linux/s390x",
		"linux/ppc64le":    "linux/ppc64le",
		"linux/riscv64":    "linux/riscv64",
		"linux/arm64/v9.0": "linux/arm64/v9",
	} {
		got, msg := parsePlatform(in)
		if msg != "" || got != want {
			t.Errorf("parsePlatform(%q) = %q, %q; want %q", in, got, msg, want)
		}
	}
}
