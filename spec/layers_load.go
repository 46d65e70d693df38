package spec

import (
	"context"
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/ispec-dev/ispec/pylock"
)

// validateLayers checks every layer item's values, as validate checks the
// flat fields. Decode has already made sure each holds one kind.
func validateLayers(c *collector, s *Spec) {
	for i, l := range s.Layers {
		f := LayerField(i) + "." + string(l.Kind)
		for _, v := range layerStrings(l) {
			if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				c.add(0, LayerField(i), "contains invalid UTF-8 or a NUL byte")
				break
			}
		}
		empty := func(n int, what string) bool {
			if n == 0 {
				c.add(0, f, "is empty; expected %s", what)
			}
			return n == 0
		}
		switch l.Kind {
		case LayerApt:
			if !empty(len(l.AptPackages), "Debian package names") {
				for j, p := range l.AptPackages {
					if !aptRe.MatchString(strings.TrimSpace(p)) {
						c.add(0, fmt.Sprintf("%s[%d]", f, j), "%q is not a Debian package name (lowercase letters, digits, + - .; optionally =version)", p)
					}
				}
			}
		case LayerPackages:
			if !empty(len(l.Packages), "pip requirements such as numpy==2.1.0") {
				for j, p := range l.Packages {
					if msg := checkPEP508(p); msg != "" {
						c.add(0, fmt.Sprintf("%s[%d]", f, j), "%q is not a PEP 508 requirement: %s", p, msg)
					}
				}
			}
		case LayerRequirements:
			if msg := checkRelPath(l.Requirements); msg != "" {
				c.add(0, f, "%q %s", l.Requirements, msg)
			} else if _, ok := pylock.FormatOf(l.Requirements); ok {
				c.add(0, f, "%q is a Python lock file: a layer's requirements is a pip requirements file; name the lock in the top-level requirements field", l.Requirements)
			}
		case LayerWheels:
			if msg := checkRelPath(l.PythonWheels); msg != "" {
				c.add(0, f, "%q %s", l.PythonWheels, msg)
			}
		case LayerUVProject:
			u := l.UVProject
			if u == nil {
				u = &UVProject{}
			}
			for _, p := range []struct{ name, v string }{{"pyproject", u.Pyproject}, {"uvlock", u.UVLock}} {
				if p.v == "" {
					c.add(0, f+"."+p.name, "is required: the path of the project's %s, relative to the spec file", map[string]string{"pyproject": "pyproject.toml", "uvlock": "uv.lock"}[p.name])
				} else if msg := checkRelPath(p.v); msg != "" {
					c.add(0, f+"."+p.name, "%q %s", p.v, msg)
				}
			}
		case LayerCommands:
			if !empty(len(l.Commands), "shell commands") {
				for j, cmd := range l.Commands {
					if strings.TrimSpace(cmd) == "" {
						c.add(0, fmt.Sprintf("%s[%d]", f, j), "is empty")
					}
				}
			}
		case LayerWorkdir:
			if !path.IsAbs(l.Workdir) {
				c.add(0, f, "%q must be an absolute path", l.Workdir)
			}
		case LayerCopy:
			if !empty(len(l.Copy), "{src, dst} pairs") {
				for j, p := range l.Copy {
					pf := fmt.Sprintf("%s[%d]", f, j)
					if msg := checkRelPath(p.Src); msg != "" {
						c.add(0, pf+".src", "%q %s", p.Src, msg)
					}
					if strings.TrimSpace(p.Dst) == "" {
						c.add(0, pf+".dst", "is required: where in the image the file or folder goes (absolute, or relative to the working directory)")
					}
				}
			}
		case LayerEnv:
			if !empty(len(l.Env), "a mapping of names to values") {
				for _, k := range sortedKeys(l.Env) {
					if !envNameRe.MatchString(k) {
						c.add(0, f+"."+k, "%q is not a valid environment variable name (a letter or _, then letters, digits, _ . -; no = or spaces)", k)
					} else if err := envWord(l.Env[k]); err != nil {
						c.add(0, f+"."+k, "%q is not a value Dockerfile ENV accepts: %v (values are expanded as ENV does: write \\$ for a literal $)", l.Env[k], err)
					}
				}
			}
		}
		if l.Pip.Index != "" {
			checkIndexURL(c, LayerField(i)+".pip_index", l.Pip.Index)
		}
		for j, u := range l.Pip.ExtraIndexURL {
			checkIndexURL(c, fmt.Sprintf("%s.pip_extra_index_url[%d]", LayerField(i), j), u)
		}
		if _, err := splitArgs(l.Pip.ExtraArgs); err != nil {
			c.add(0, LayerField(i)+".pip_extra_args", "%v", err)
		}
		checkLayerSecretMounts(c, LayerField(i)+".pip_secret_mounts", l.Pip.SecretMounts, s.PipSecretMounts)
	}
}

// checkLayerSecretMounts checks a layer's pip_secret_mounts as the
// top-level ones are checked, and that no two mounts of the layer's pip
// step (its own and the top-level ones) share a target or an env.
func checkLayerSecretMounts(c *collector, key string, mounts, top []SecretMount) {
	checkSecretMountItems(c, key, mounts)
	checkSecretClashes(c, key, mounts, top)
}

// layerStrings are every string a layer holds, for the UTF-8 check.
func layerStrings(l Layer) []string {
	out := append(append(append([]string{}, l.AptPackages...), l.Packages...), l.Commands...)
	out = append(out, l.Requirements, l.PythonWheels, l.Workdir, l.Pip.Index, l.Pip.ExtraArgs)
	out = append(out, l.Pip.ExtraIndexURL...)
	for _, m := range l.Pip.SecretMounts {
		out = append(out, m.Source, m.Target, m.Env)
	}
	if l.UVProject != nil {
		out = append(out, l.UVProject.Pyproject, l.UVProject.UVLock)
	}
	for _, p := range l.Copy {
		out = append(out, p.Src, p.Dst)
	}
	for k, v := range l.Env {
		out = append(out, k, v)
	}
	return out
}

// normalizeLayers returns the layers in canonical form: the sets of apt
// and pip packages trimmed, sorted and de-duplicated (requirements in
// their one spelling), paths cleaned. The order of the layers, and of
// commands, copy pairs and index URLs inside one, is kept.
func normalizeLayers(in []Layer) []Layer {
	if len(in) == 0 {
		return nil
	}
	out := make([]Layer, len(in))
	for i, l := range in {
		n := l
		n.AptPackages = sortedSet(l.AptPackages, strings.TrimSpace)
		n.Packages = sortedSet(l.Packages, normalizeRequirement)
		if l.Requirements != "" {
			n.Requirements = path.Clean(filepath.ToSlash(l.Requirements))
		}
		if l.PythonWheels != "" {
			n.PythonWheels = path.Clean(strings.TrimSpace(l.PythonWheels))
		}
		if l.UVProject != nil {
			n.UVProject = &UVProject{Pyproject: path.Clean(l.UVProject.Pyproject), UVLock: path.Clean(l.UVProject.UVLock)}
		}
		if l.Workdir != "" {
			n.Workdir = path.Clean(l.Workdir)
		}
		if l.Copy != nil {
			n.Copy = make([]CopyPair, len(l.Copy))
			for j, p := range l.Copy {
				n.Copy[j] = CopyPair{Src: path.Clean(strings.TrimSpace(p.Src)), Dst: cleanDst(p.Dst)}
			}
		}
		out[i] = n
	}
	return out
}

// cleanDst cleans a copy destination, keeping a trailing slash (a folder
// to copy into, as in a Dockerfile COPY).
func cleanDst(d string) string {
	d = strings.TrimSpace(d)
	c := path.Clean(d)
	if strings.HasSuffix(d, "/") && c != "/" {
		c += "/"
	}
	return c
}

// treeFunc hashes one referenced file or folder for a field (see
// hashFiles); ig nil reads the ignore files at its root.
type treeFunc func(field, p string, ig *Ignorer, wantDir bool) (*Tree, error)

// hashLayers hashes the files each layer item references: requirements
// (with what they include), the wheels folder, the uv project's files and
// the copy sources, with the same rules as the flat fields' files.
func (img *Image) hashLayers(ctx context.Context, f *fsys, c *collector, tree treeFunc, fileErr func(field, p string, err error) error) error {
	var ig *Ignorer
	dirIgnorer := func(field string) error {
		var err error
		if ig == nil {
			if ig, err = loadIgnorer(f, img.Dir); err != nil {
				return fileErr(field, ".", err)
			}
		}
		return nil
	}
	for i, l := range img.Spec.Layers {
		lt := &LayerTrees{}
		field := LayerField(i) + "." + string(l.Kind)
		switch l.Kind {
		case LayerRequirements:
			r := &requirementsReader{ctx: ctx, fs: f, root: img.Dir, shown: filepath.Dir(img.File), files: map[string]Entry{}}
			if msg := r.read(l.Requirements); msg != "" {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.add(0, field, "%s", msg)
				return c.err()
			}
			if len(r.errs) > 0 {
				for _, e := range r.errs {
					e.Field = field
				}
				c.errs = append(c.errs, r.errs...)
				return c.err()
			}
			lt.Requirements, lt.RequirementsFile = requirementsTree(img.Dir, r.files), l.Requirements
		case LayerWheels:
			t, err := tree(field, l.PythonWheels, nil, true)
			if err != nil {
				return err
			}
			lt.Wheels = t
			if len(lt.WheelFiles()) == 0 {
				c.add(0, field, "%s holds no .whl files", l.PythonWheels)
				return c.err()
			}
		case LayerUVProject:
			if err := dirIgnorer(field); err != nil {
				return err
			}
			var err error
			if lt.Pyproject, err = tree(field+".pyproject", l.UVProject.Pyproject, ig.under(l.UVProject.Pyproject), false); err != nil {
				return err
			}
			if lt.UVLock, err = tree(field+".uvlock", l.UVProject.UVLock, ig.under(l.UVProject.UVLock), false); err != nil {
				return err
			}
			for _, t := range []*Tree{lt.Pyproject, lt.UVLock} {
				if len(t.Entries) != 1 || t.Entries[0].Kind != KindFile {
					c.add(0, field, "pyproject and uvlock must be files, not folders")
					return c.err()
				}
			}
		case LayerCopy:
			if err := dirIgnorer(field); err != nil {
				return err
			}
			for j, p := range l.Copy {
				t, err := tree(fmt.Sprintf("%s[%d].src", field, j), p.Src, ig.under(p.Src), false)
				if err != nil {
					return err
				}
				lt.Copies = append(lt.Copies, t)
			}
		}
		img.Layers = append(img.Layers, lt)
	}
	return nil
}
