package spec

import (
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-containerregistry/pkg/name"
)

// Grammars of the strings that reach package managers and the image config.
var (
	// Debian package name (Debian Policy 5.6.1), optional :arch, optional
	// =version (5.6.12) or /release.
	aptRe = lazyRe(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[0-9]+:[A-Za-z0-9.+~-]+|=[A-Za-z0-9][A-Za-z0-9.+~-]*(:[A-Za-z0-9.+~-]+)?|/[a-z0-9.-]+)?$`)
	// PEP 508 distribution name.
	pepNameRe = lazyRe(`^([A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]|[A-Za-z0-9])`)
	// PEP 508 extras, version specifiers, URL and marker parts after the name.
	pepExtrasRe  = lazyRe(`^\[\s*[A-Za-z0-9][A-Za-z0-9._-]*(\s*,\s*[A-Za-z0-9][A-Za-z0-9._-]*)*\s*\]`)
	pepVersionRe = lazyRe(`^\(?\s*(~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9_.*+!-]+(\s*,\s*(~=|===|==|!=|<=|>=|<|>)\s*[A-Za-z0-9_.*+!-]+)*\s*\)?`)
	pepURLRe     = lazyRe(`^@\s*[A-Za-z][A-Za-z0-9+.-]*://[^\s;]+`)
	pepMarkerRe  = lazyRe(`^;\s*[A-Za-z0-9_.'"<>=!~ (),\-]+$`)
	envNameRe    = lazyRe(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	// secretEnvRe is what an env variable that holds a secret may be
	// named: a name every shell and pip can read.
	secretEnvRe = lazyRe(`^[A-Za-z_][A-Za-z0-9_]*$`)
	pyVersionRe = lazyRe(`^[0-9]+(\.[0-9]+){0,2}$`)
	cudaRe      = lazyRe(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)
	cudnnRe     = lazyRe(`^[0-9]+(\.[0-9]+)*$`)
	repoRe      = lazyRe(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRe       = lazyRe(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	condaRe     = lazyRe(`^([A-Za-z0-9_.-]+::)?[A-Za-z0-9_.-]+(\s*[=<>!~]{0,2}\s*[A-Za-z0-9_.*+!,|=<>-]*)*(\[[A-Za-z0-9_.=,'" -]*\])?$`)
)

// validate checks every field's grammar. It never changes the spec.
func validate(c *collector, s *Spec) {
	checkUTF8(c, s)
	checkCredentials(c, s)
	checkNaming(c, s)
	checkPackages(c, s)
	checkGPU(c, s)
	checkEnvironment(c, s)
	checkInputs(c, s)
	if s.SourceRoot != "" {
		if msg := checkRelPath(s.SourceRoot); msg != "" {
			c.add(0, "source_root", "%q %s", s.SourceRoot, msg)
		}
	}
	checkSecretMounts(c, "pip_secret_mounts", s.PipSecretMounts)
	checkSecretEnvUnset(c, s)
	checkPlatforms(c, s.Platform)
	if s.Workdir != "" && !path.IsAbs(s.Workdir) {
		c.add(0, "workdir", "%q must be an absolute path", s.Workdir)
	}
	if s.User != "" {
		if msg := CheckUser(s.User); msg != "" {
			c.add(0, "user", "%q %s", s.User, msg)
		}
	}
	checkSourceCopyMode(c, s)
	if s.TagFormat != "" {
		checkTagFormat(c, s.TagFormat)
	}
	validateLayers(c, s)
}

// checkNaming checks the fields that name the image and its base.
func checkNaming(c *collector, s *Spec) {
	if strings.TrimSpace(s.Name) == "" {
		c.add(0, "name", "is empty: the image's repository name, e.g. name: my-image (without the field, it is %q)", DefaultName)
	} else if !repoRe.MatchString(strings.ToLower(s.Name)) {
		c.add(0, "name", "%q is not a valid repository name (lowercase letters, digits, and . _ - / between them)", s.Name)
	}
	if s.Registry != "" {
		checkRegistry(c, s.Registry)
	}
	if s.BaseImage.Ref != "" {
		if _, err := name.ParseReference(s.BaseImage.Ref); err != nil {
			c.add(0, "base_image", "%q is not a valid image reference: %v", s.BaseImage.Ref, err)
		}
	}
}

// checkPackages checks the interpreter and the packages installed (pip, apt, conda).
func checkPackages(c *collector, s *Spec) {
	if s.PythonVersion != "" && !pyVersionRe.MatchString(s.PythonVersion) {
		c.add(0, "python_version", "%q is not a Python version; expected major.minor such as \"3.11\"", s.PythonVersion)
	}
	if s.PythonExec != "" && !path.IsAbs(s.PythonExec) && strings.ContainsAny(s.PythonExec, "/ \t") {
		c.add(0, "python_exec", "%q must be an absolute path or a command name", s.PythonExec)
	}
	for i, p := range s.Packages {
		if msg := checkPEP508(p); msg != "" {
			c.add(0, fmt.Sprintf("packages[%d]", i), "%q is not a PEP 508 requirement: %s", p, msg)
		}
	}
	for i, p := range s.AptPackages {
		if !aptRe.MatchString(strings.TrimSpace(p)) {
			c.add(0, fmt.Sprintf("apt_packages[%d]", i), "%q is not a Debian package name (lowercase letters, digits, + - .; optionally =version)", p)
		}
	}
	for i, p := range s.CondaPackages {
		if !condaRe.MatchString(strings.TrimSpace(p)) {
			c.add(0, fmt.Sprintf("conda_packages[%d]", i), "%q is not a conda package spec (name, optional version constraint)", p)
		}
	}
	for i, ch := range s.CondaChannels {
		if ch == "" || strings.HasPrefix(ch, "-") || strings.IndexFunc(ch, unicode.IsSpace) >= 0 {
			c.add(0, fmt.Sprintf("conda_channels[%d]", i), "%q is not a conda channel name or URL", ch)
		}
	}
}

// checkGPU checks the CUDA and cuDNN versions.
func checkGPU(c *collector, s *Spec) {
	if s.Cuda != "" && !cudaRe.MatchString(s.Cuda) {
		c.add(0, "cuda", "%q is not a CUDA version; expected major.minor[.patch] such as \"12.4.1\"", s.Cuda)
	}
	if s.Cudnn != "" {
		if !cudnnRe.MatchString(s.Cudnn) {
			c.add(0, "cudnn", "%q is not a cuDNN version; expected a major version such as \"9\"", s.Cudnn)
		}
		if s.Cuda == "" {
			c.add(0, "cudnn", "needs cuda to be set too")
		}
	}
}

// checkEnvironment checks the environment, labels and commands of the image.
func checkEnvironment(c *collector, s *Spec) {
	checkMap(c, "env", s.Env, func(k string) string {
		if !envNameRe.MatchString(k) {
			return "is not a valid environment variable name (a letter or _, then letters, digits, _ . -; no = or spaces)"
		}
		return ""
	})
	checkEnvValues(c, s.Env)
	checkMap(c, "labels", s.Labels, func(k string) string {
		if k == "" || strings.IndexFunc(k, unicode.IsSpace) >= 0 || strings.Contains(k, "=") {
			return "is not a valid label key (no spaces or =)"
		}
		return ""
	})
	for i, cmd := range s.Commands {
		if strings.TrimSpace(cmd) == "" {
			c.add(0, fmt.Sprintf("commands[%d]", i), "is empty")
		}
	}
}

// checkInputs checks what the build reads: copies, pip's indexes and
// arguments, the requirements file; conda packages are refused.
func checkInputs(c *collector, s *Spec) {
	for i, p := range s.Copy {
		if msg := checkRelPath(p); msg != "" {
			c.add(0, fmt.Sprintf("copy[%d]", i), "%q %s", p, msg)
		}
	}
	if s.PipIndex != "" {
		checkIndexURL(c, "pip_index", s.PipIndex)
	}
	for i, u := range s.PipExtraIndexURL {
		checkIndexURL(c, fmt.Sprintf("pip_extra_index_url[%d]", i), u)
	}
	if _, err := splitArgs(s.PipExtraArgs); err != nil {
		c.add(0, "pip_extra_args", "%v", err)
	}
	if s.Requirements != "" {
		if msg := checkRelPath(s.Requirements); msg != "" {
			c.add(0, "requirements", "%q %s", s.Requirements, msg)
		}
	}
	if len(s.CondaPackages) > 0 {
		c.add(0, "conda_packages", "conda builds are not supported yet (planned: a micromamba environment beside the venv); install these with pip in packages, or use a base image that has them")
	}
}

func checkUTF8(c *collector, s *Spec) {
	bad := func(field, v string) {
		if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			c.add(0, field, "contains invalid UTF-8 or a NUL byte")
		}
	}
	for _, f := range []struct{ n, v string }{{"name", s.Name}, {"registry", s.Registry}, {"base_image", s.BaseImage.Ref + s.BaseImage.Spec},
		{"python_version", s.PythonVersion}, {"requirements", s.Requirements}, {"source_root", s.SourceRoot}, {"pip_index", s.PipIndex},
		{"pip_extra_args", s.PipExtraArgs}, {"workdir", s.Workdir}, {"user", s.User}, {"tag_format", s.TagFormat}} {
		bad(f.n, f.v)
	}
	for _, l := range []struct {
		n  string
		vs []string
	}{{"packages", s.Packages}, {"apt_packages", s.AptPackages}, {"commands", s.Commands}, {"copy", s.Copy}, {"entrypoint", s.Entrypoint}, {"conda_packages", s.CondaPackages}} {
		for i, v := range l.vs {
			bad(fmt.Sprintf("%s[%d]", l.n, i), v)
		}
	}
	for k, v := range s.Env {
		bad("env."+k, k+v)
	}
	for k, v := range s.Labels {
		bad("labels."+k, k+v)
	}
}

func checkMap(c *collector, field string, m map[string]string, keyErr func(string) string) {
	for _, k := range sortedKeys(m) {
		if msg := keyErr(k); msg != "" {
			c.add(0, field+"."+k, "%q %s", k, msg)
		}
	}
}

// checkRegistry checks a registry as flytekit uses it: lowercased first,
// so GHCR.io/Org is ghcr.io/org.
func checkRegistry(c *collector, raw string) {
	r := strings.ToLower(raw)
	if hostCredentials(r) {
		return // refused by checkCredentials
	}
	if scheme, rest, ok := strings.Cut(r, "://"); ok {
		c.add(0, "registry", "%q has a scheme; drop %q and write host[:port][/path], e.g. %q", raw, scheme+"://", maskCredentials(strings.TrimSuffix(rest, "/")))
		return
	}
	host, repoPath, _ := strings.Cut(strings.TrimSuffix(r, "/"), "/")
	if h, port, ok := strings.Cut(host, ":"); ok && !strings.HasPrefix(host, "[") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			c.add(0, "registry", "%q has an invalid port %q; expected 1-65535", r, port)
			return
		}
		host = h
	}
	if _, err := name.NewRegistry(host, name.StrictValidation); err != nil || host == "" {
		c.add(0, "registry", "%q is not a registry host (host[:port][/path])", r)
		return
	}
	if repoPath != "" && !repoRe.MatchString(repoPath) {
		c.add(0, "registry", "%q has an invalid path %q", r, repoPath)
	}
}

// checkPEP508 returns what is wrong with a requirement, or "".
func checkPEP508(req string) string {
	r := strings.TrimSpace(req)
	if strings.HasPrefix(r, "-") {
		return "pip options are not requirements; use pip_extra_args"
	}
	m := pepNameRe.FindString(r)
	if m == "" {
		return "expected a package name first"
	}
	r = strings.TrimSpace(r[len(m):])
	if loc := pepExtrasRe.FindString(r); loc != "" {
		r = strings.TrimSpace(r[len(loc):])
	}
	if loc := pepURLRe.FindString(r); loc != "" {
		r = strings.TrimSpace(r[len(loc):])
	} else if loc := pepVersionRe.FindString(r); loc != "" {
		r = strings.TrimSpace(r[len(loc):])
	}
	if r == "" || pepMarkerRe.MatchString(r) {
		return ""
	}
	return fmt.Sprintf("unexpected %q", r)
}

// checkRelPath returns what is wrong with a path that must stay inside the
// spec's folder, or "".
func checkRelPath(p string) string {
	switch {
	case p == "":
		return "is empty"
	case path.IsAbs(p) || strings.HasPrefix(p, `\`) || (len(p) > 1 && p[1] == ':'):
		return "must be relative to the spec file's folder, not absolute"
	}
	clean := path.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "climbs out of the spec file's folder with .."
	}
	return ""
}

func checkIndexURL(c *collector, field, raw string) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.add(0, field, "expected an http(s) URL")
		return
	}
}

func checkTagFormat(c *collector, f string) {
	if !strings.Contains(f, "{spec_hash}") {
		c.add(0, "tag_format", "%q must contain {spec_hash}", f)
		return
	}
	if t := strings.ReplaceAll(f, "{spec_hash}", strings.Repeat("0", tagHashLen)); !tagRe.MatchString(t) {
		c.add(0, "tag_format", "%q does not make a valid tag (letters, digits, _ . -, at most 128 characters)", f)
	}
}

// splitArgs splits a string into arguments the way a POSIX shell would for
// plain words and quotes, without expansion of any kind.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for i := 0; i < len(s); i++ {
		ch := rune(s[i])
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else if ch == '\\' && quote == '"' && i+1 < len(s) && strings.ContainsRune(`"\$`+"`", rune(s[i+1])) {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteRune(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(ch)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// PipStepEnv returns the env variables ispec sets itself in every pip
// step (its own and the image defaults flytekit's builder sets); a secret
// given as an env variable may not take one of these names.
func PipStepEnv() []string {
	return []string{"PATH", "HOME", "VIRTUAL_ENV", "SOURCE_DATE_EPOCH", "NETRC",
		"PYTHONDONTWRITEBYTECODE", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT",
		"PIP_ROOT_USER_ACTION", "PIP_CACHE_DIR",
		"FLYTE_SDK_RICH_TRACEBACKS", "SSL_CERT_DIR", "PYTHONPATH", "LD_LIBRARY_PATH", "_F_IMG_ID"}
}

// checkSecretMounts checks the top-level pip_secret_mounts (or a list
// named by key mounted in a pip step of its own): each item, and that no
// two share a target or an env.
func checkSecretMounts(c *collector, key string, mounts []SecretMount) {
	checkSecretMountItems(c, key, mounts)
	checkSecretClashes(c, key, mounts, nil)
}

// checkSecretMountItems checks each mount of key: a source, a path in the
// spec's folder, and either a target, an absolute path, or an env, a
// variable name ispec does not set itself.
func checkSecretMountItems(c *collector, key string, mounts []SecretMount) {
	for i, m := range mounts {
		f := fmt.Sprintf("%s[%d]", key, i)
		if m.Source == "" {
			c.add(0, f, "source is required: the path of the secret file")
		} else if msg := checkRelPath(m.Source); msg != "" {
			c.add(0, f, "source %q %s", m.Source, msg)
		}
		switch {
		case m.Env != "" && m.Target != "":
			c.add(0, f, "give target (a file) or env (an env variable), not both")
		case m.Env != "":
			checkSecretEnv(c, f, m.Env)
		case !path.IsAbs(m.Target):
			c.add(0, f, "target %q must be an absolute path in the build container (or give env: the name of an env variable)", m.Target)
		}
	}
}

// checkSecretEnv checks the env variable name a secret is given in.
func checkSecretEnv(c *collector, f, name string) {
	if !secretEnvRe.MatchString(name) {
		c.add(0, f, "env %q is not an env variable name: letters, digits and _, not starting with a digit", name)
		return
	}
	for _, r := range PipStepEnv() {
		if strings.EqualFold(name, r) {
			c.add(0, f, "env %q is set by ispec in every pip step; name another variable", name)
			return
		}
	}
}

// checkSecretEnvUnset reports a secret given as an env variable that the
// spec's env, or a layer's, also sets: the step would see two values.
func checkSecretEnvUnset(c *collector, s *Spec) {
	set := map[string]string{}
	for k := range s.Env {
		set[k] = "env"
	}
	for i, l := range s.Layers {
		for k := range l.Env {
			if _, ok := set[k]; !ok {
				set[k] = LayerField(i) + ".env"
			}
		}
	}
	check := func(key string, mounts []SecretMount) {
		for i, m := range mounts {
			if where, ok := set[m.Env]; ok && m.Env != "" {
				c.add(0, fmt.Sprintf("%s[%d]", key, i), "env %q is also set by %s; a secret's variable must be one the spec does not set", m.Env, where)
			}
		}
	}
	check("pip_secret_mounts", s.PipSecretMounts)
	for i, l := range s.Layers {
		check(LayerField(i)+".pip_secret_mounts", l.Pip.SecretMounts)
	}
}

// checkSecretClashes reports mounts of key that share a target or an env
// with one before them, in key's list or in others (the top-level mounts,
// mounted in the same pip step as a layer's).
func checkSecretClashes(c *collector, key string, mounts, others []SecretMount) {
	seen := map[string]string{}
	id := func(m SecretMount) (string, string) {
		switch {
		case m.Env != "":
			return "env", m.Env
		case path.IsAbs(m.Target):
			return "target", path.Clean(m.Target)
		}
		return "", ""
	}
	for i, m := range others {
		if what, v := id(m); what != "" {
			seen[what+" "+v] = fmt.Sprintf("pip_secret_mounts[%d]", i)
		}
	}
	for i, m := range mounts {
		what, v := id(m)
		if what == "" {
			continue
		}
		f := fmt.Sprintf("%s[%d]", key, i)
		if other, ok := seen[what+" "+v]; ok {
			shown := m.Env
			if what == "target" {
				shown = m.Target
			}
			c.add(0, f, "%s %q is also the %s of %s, mounted in the same pip step; give each secret a %s of its own", what, shown, what, other, what)
			continue
		}
		seen[what+" "+v] = f
	}
}
