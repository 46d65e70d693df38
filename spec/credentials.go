package spec

import (
	"fmt"
	"strings"
)

// credentialAdvice says where credentials go instead of the spec.
const credentialAdvice = "the spec is hashed, stored in the image's dev.ispec.spec label and printed in build logs; " +
	"remove them and give them to pip in a netrc file, through the pip-netrc configuration setting or pip_secret_mounts"

// pipURLOptions are pip's options whose value is a URL, a host or a path
// that may name a host. pip also accepts any unambiguous prefix of a long
// option (--index for --index-url), and so does this check.
var pipURLOptions = []string{"index-url", "extra-index-url", "find-links", "trusted-host", "proxy"}

// pipURLShort are pip's one-letter forms of pipURLOptions.
const pipURLShort = "if"

// credentialEnv are environment variables (compared without case) whose
// values are URLs or host names that pip, uv or any HTTP client reads,
// possibly as a space-separated list.
var credentialEnv = []string{
	"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST", "PIP_PROXY",
	"UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX", "UV_FIND_LINKS",
	"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY",
}

// bareUserinfoRe matches user information before a host that has no
// scheme, at the start of a word or after = or a quote.
var bareUserinfoRe = lazyRe(`(^|[\s="'])[^\s="'/@]+@`)

// checkCredentials refuses credentials in every URL a spec holds: a user
// name or password in a URL's authority (https://user:pass@host/,
// https://TOKEN@host/), in any string of any field; a user name or
// password before a host in the value of pip's URL options and of the
// index and proxy environment variables, where pip accepts a host without
// a scheme (--proxy user:pass@proxy:3128); and conda's /t/TOKEN/ channel
// URLs. A user name alone is allowed in ssh URLs (ssh://git@host/), where
// it is not a secret.
func checkCredentials(c *collector, s *Spec) {
	refuse := func(field, v string) {
		c.add(0, field, "%q carries credentials in a URL; %s", maskCredentials(v), credentialAdvice)
	}
	scan := func(field, v string) bool {
		if hasURLCredentials(v) {
			refuse(field, v)
			return true
		}
		return false
	}
	for _, f := range []struct{ n, v string }{{"pip_index", s.PipIndex}, {"base_image", s.BaseImage.Ref},
		{"python_exec", s.PythonExec}, {"workdir", s.Workdir}} {
		scan(f.n, f.v)
	}
	if hostCredentials(s.Registry) {
		c.add(0, "registry", "%q carries credentials; write host[:port][/path] and log in with docker login (ispec reads the Docker credential configuration)", maskCredentials(s.Registry))
	}
	for _, l := range []struct {
		n  string
		vs []string
	}{{"packages", s.Packages}, {"pip_extra_index_url", s.PipExtraIndexURL}, {"apt_packages", s.AptPackages},
		{"conda_packages", s.CondaPackages}, {"commands", s.Commands}, {"entrypoint", s.Entrypoint}} {
		for i, v := range l.vs {
			scan(fmt.Sprintf("%s[%d]", l.n, i), v)
		}
	}
	for i, ch := range s.CondaChannels {
		f := fmt.Sprintf("conda_channels[%d]", i)
		if !scan(f, ch) && condaToken(ch) {
			c.add(0, f, "%q carries credentials (a conda token, /t/TOKEN/); %s", maskCredentials(ch), credentialAdvice)
		}
	}
	for _, k := range sortedKeys(s.Env) {
		v := s.Env[k]
		if scan("env."+k, v) || !isCredentialEnv(k) {
			continue
		}
		for _, w := range strings.Fields(v) {
			if hostCredentials(w) {
				refuse("env."+k, v)
				break
			}
		}
	}
	for _, k := range sortedKeys(s.Labels) {
		scan("labels."+k, s.Labels[k])
	}
	checkPipArgCredentials(c, s.PipExtraArgs)
}

// checkPipArgCredentials checks pip_extra_args word by word: any URL with
// credentials, and the value of a URL option in each of its forms
// (--index-url=V, --index-url V, -iV, -i V and prefixes of long options).
func checkPipArgCredentials(c *collector, raw string) {
	args, err := splitArgs(raw)
	if err != nil {
		return // reported by validate
	}
	bad := false
	for i := 0; i < len(args) && !bad; i++ {
		a := args[i]
		if hasURLCredentials(a) {
			bad = true
			break
		}
		var val string
		var takesNext bool
		switch {
		case strings.HasPrefix(a, "--") && len(a) > 3:
			name, v, eq := strings.Cut(a[2:], "=")
			if !isPipURLOption(name) {
				continue
			}
			val, takesNext = v, !eq
		case len(a) >= 2 && a[0] == '-' && strings.IndexByte(pipURLShort, a[1]) >= 0:
			val, takesNext = a[2:], len(a) == 2
		default:
			continue
		}
		if takesNext && i+1 < len(args) {
			i++
			val = args[i]
		}
		bad = hostCredentials(val)
	}
	if bad {
		c.add(0, "pip_extra_args", "%q carries credentials in a URL; %s", maskCredentials(raw), credentialAdvice)
	}
}

func isPipURLOption(name string) bool {
	for _, o := range pipURLOptions {
		if strings.HasPrefix(o, name) {
			return true
		}
	}
	return false
}

func isCredentialEnv(k string) bool {
	for _, e := range credentialEnv {
		if strings.EqualFold(k, e) {
			return true
		}
	}
	return false
}

// urlAuthority finds the next "scheme://authority" in s at or after from.
// It returns the scheme, the authority's start and end, and whether one
// was found.
func urlAuthority(s string, from int) (scheme string, start, end int, ok bool) {
	i := strings.Index(s[from:], "://")
	if i < 0 {
		return "", 0, 0, false
	}
	i += from
	j := i
	for j > 0 && isSchemeByte(s[j-1]) {
		j--
	}
	start = i + 3
	end = start + authorityLen(s[start:])
	return strings.ToLower(s[j:i]), start, end, true
}

// authorityLen is the length of the authority at the start of s: up to the
// first / ? # \, space or quote.
func authorityLen(s string) int {
	if n := strings.IndexAny(s, "/?#\\ \t\n\r\"'"); n >= 0 {
		return n
	}
	return len(s)
}

func isSchemeByte(c byte) bool {
	return c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// hasURLCredentials reports whether any URL in s has user information
// that may be secret: anything but a bare user name in an ssh URL.
func hasURLCredentials(s string) bool {
	for from := 0; ; {
		scheme, start, end, ok := urlAuthority(s, from)
		if !ok {
			return false
		}
		if at := strings.LastIndexByte(s[start:end], '@'); at >= 0 {
			user := s[start : start+at]
			if !strings.HasSuffix(scheme, "ssh") || strings.Contains(user, ":") {
				return true
			}
		}
		from = start
	}
}

// hostCredentials reports whether a value that may be a URL or a bare
// host[:port] carries a user name or password before the host.
func hostCredentials(v string) bool {
	if strings.Contains(v, "://") {
		return hasURLCredentials(v)
	}
	return strings.Contains(v[:authorityLen(v)], "@")
}

// condaToken reports whether a conda channel URL carries an anaconda.org
// token in its path (https://conda.anaconda.org/t/TOKEN/channel).
func condaToken(ch string) bool {
	_, _, end, ok := urlAuthority(ch, 0)
	return ok && strings.HasPrefix(ch[end:], "/t/")
}

// maskCredentials replaces the user information of every URL in s, a
// bare user:pass@ before a host, and a conda token with ***, so that an
// error can quote a value without its secret.
func maskCredentials(s string) string {
	// A user name or password before a bare host (user:pass@proxy:3128).
	return bareUserinfoRe.ReplaceAllString(maskURLs(s), "${1}***@")
}

// maskURLs replaces the user information of every scheme://user@host URL
// in s, and a conda /t/TOKEN, with ***. Every field error passes through
// it, so no message quotes a URL's secret.
func maskURLs(s string) string {
	var b strings.Builder
	from := 0
	for {
		_, start, end, ok := urlAuthority(s, from)
		if !ok {
			break
		}
		b.WriteString(s[from:start])
		auth := s[start:end]
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			b.WriteString("***")
			auth = auth[at:]
		}
		b.WriteString(auth)
		from = end
		if strings.HasPrefix(s[end:], "/t/") {
			b.WriteString("/t/***")
			from = end + 3 + strings.IndexByte(s[end+3:]+"/", '/')
		}
	}
	b.WriteString(s[from:])
	return b.String()
}
