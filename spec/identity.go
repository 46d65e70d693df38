package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Encoding names the canonical encoding of the hash input. Changing what is
// hashed or how means changing this on purpose (docs/identity.md).
const Encoding = "ispec.identity/v2"

// RecipeVersion is the version of the build recipe (the builder's LLB
// graph). It is hashed, so it must change whenever the builder changes the
// images it makes for the same spec.
const RecipeVersion = "5"

// RecipeChange says in a few words what RecipeVersion changed; the full
// history is in docs/identity.md.
const RecipeChange = "images run as a non-root user (flytekit by default) with flytekit's env"

// tagHashLen is how many hex digits of the spec hash go in the tag: 128 bits.
const tagHashLen = 32

// Identity is where an image lives and the content-addressed tag it has.
type Identity struct {
	// Ref is registry/repository:tag, or repository:tag without a registry.
	Ref string `json:"ref"`
	// Registry is the registry host[:port]; empty when the spec names none.
	Registry string `json:"registry"`
	// Repository is the repository path inside the registry.
	Repository string `json:"repository"`
	// Tag is tag_format applied to the first 32 hex digits of SpecHash.
	Tag string `json:"tag"`
	// SpecHash is the full SHA-256 of the canonical hash input, in hex.
	SpecHash string `json:"spec_hash"`
}

// document builds the hash input of an image whose files are hashed and
// whose parent, if any, has its identity.
func (img *Image) document() map[string]any {
	s := img.Spec
	sp := map[string]any{}
	put := func(k, v string) {
		if v != "" {
			sp[k] = v
		}
	}
	putList := func(k string, v []string) {
		if len(v) > 0 {
			sp[k] = v
		}
	}
	base := map[string]any{}
	if img.Parent != nil {
		base["spec_hash"] = img.Parent.Identity.SpecHash
	} else {
		base["ref"] = img.Base
		if len(img.pinned) > 0 {
			base["pinned"] = img.pinned
		}
	}
	sp["base_image"] = base
	put("python_version", s.PythonVersion)
	put("python_exec", s.PythonExec)
	putList("packages", s.Packages)
	putList("apt_packages", s.AptPackages)
	putList("conda_packages", s.CondaPackages)
	putList("conda_channels", s.CondaChannels)
	put("cuda", s.Cuda)
	put("cudnn", s.Cudnn)
	if len(s.Env) > 0 {
		sp["env"] = s.Env
	}
	putList("commands", s.Commands)
	switch {
	case img.PythonLock != nil && img.PythonLock.Resolved:
		sp["python_pinned"] = img.pythonPinnedDocument()
		if img.Requirements != nil {
			sp["requirements"] = img.requirementsDocument()
		}
	case img.PythonLock != nil:
		sp["requirements"] = img.pythonLockDocument()
	case img.Requirements != nil:
		sp["requirements"] = img.requirementsDocument()
	}
	if len(img.Copies) > 0 {
		cp := make([]any, len(img.Copies))
		for i, t := range img.Copies {
			cp[i] = map[string]any{"path": s.Copy[i], "tree": t.Digest}
		}
		sp["copy"] = cp
	}
	if img.Source != nil {
		sp["source_root"] = img.Source.Digest
	}
	put("pip_index", s.PipIndex)
	putList("pip_extra_index_url", s.PipExtraIndexURL)
	if args, _ := splitArgs(s.PipExtraArgs); len(args) > 0 {
		sp["pip_extra_args"] = args
	}
	if s.Entrypoint != nil {
		sp["entrypoint"] = append([]string{}, s.Entrypoint...)
	}
	workdir := s.Workdir
	if workdir == "" {
		workdir = DefaultWorkdir
	}
	sp["workdir"] = workdir
	put("user", s.User)
	if len(s.Labels) > 0 {
		sp["labels"] = s.Labels
	}
	doc := map[string]any{
		"encoding":  Encoding,
		"recipe":    RecipeVersion,
		"platforms": s.Platform,
		"spec":      sp,
	}
	img.addLayers(doc, sp)
	return doc
}

// computeIdentity hashes the document and names the image.
func (img *Image) computeIdentity() {
	img.Document = canonical(img.document())
	sum := sha256.Sum256(img.Document)
	h := hex.EncodeToString(sum[:])
	format := img.Spec.TagFormat
	if format == "" {
		format = "{spec_hash}"
	}
	tag := strings.ReplaceAll(format, "{spec_hash}", h[:tagHashLen])
	id := Identity{SpecHash: h, Tag: tag, Repository: img.Spec.Name}
	reg := img.Spec.Registry
	if reg != "" {
		host, path, _ := strings.Cut(reg, "/")
		id.Registry = host
		if path != "" {
			id.Repository = path + "/" + img.Spec.Name
		}
		id.Ref = host + "/" + id.Repository + ":" + tag
	} else {
		id.Ref = id.Repository + ":" + tag
	}
	img.Identity = id
}
