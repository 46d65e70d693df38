package main

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/spec"
)

// buildResult is one line of `ispec build --json`.
type buildResult struct {
	Spec   string `json:"spec"`
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Built is true when this call built the image (also when it joined
	// a build of the same tag), false when it was found.
	Built bool `json:"built"`
	// Outcome is found, built or joined.
	Outcome  string  `json:"outcome"`
	Output   string  `json:"output,omitempty"`
	Duration float64 `json:"duration_seconds"`
	// PythonResolved is, for a spec whose Python requirements float and
	// that this call built (or joined the build of), what each
	// platform's image installed: name==version, by platform.
	PythonResolved map[string][]string `json:"python_resolved,omitempty"`
	// Error is set when the spec failed; the other specs are still built.
	Error *errorRecord `json:"error,omitempty"`
}

// buildLong is the help of `ispec build`.
const buildLong = `For each spec: compute its reference, ask the registry, and only when
the image is absent build it with BuildKit and push it. A spec whose base
is another spec builds the parent first (once, however many children
share it). Prints ref@digest per spec on stdout; progress goes to stderr
as buildx shows it.

SPEC may be a glob pattern, expanded by ispec (quote it so that CI
systems and shells pass it as is): * ? [...] within a path element, **
for any number of folders ("images/**/*.yaml"); a pattern that matches
no file is an error (exit 2). Every spec is attempted: an invalid spec,
or one whose build fails, is reported (file, line and field for an
invalid one) and the others are still built. --jobs N builds N distinct
specs at once; a parent shared by several specs is built once. With
several specs a summary ends stderr (found, built, failed, times), and
when GITHUB_STEP_SUMMARY is set a Markdown summary is appended to it.
--json-out FILE writes one record per spec (spec, name, ref, digest,
outcome found/built/failed, duration_seconds, error) and the summary.
--image-args prints "--image NAME=REF@DIGEST" per spec found or built,
the arguments pyflyte register takes. With --jobs above 1, each line of
plain progress starts with "[SPEC] " (a tty display becomes plain) and
each JSON progress object gets a "spec" field.

Parallel runs on one host build a tag once: a file lock in the cache dir
serializes them and the second finds the first's image. A failed build
pushes nothing and shows the failing step with the tail of its log.

--output oci:PATH writes an OCI image layout tarball, --output docker:PATH
a tarball that docker load accepts, instead of pushing: the one spec given
is always built, its registry is neither asked nor needed (the image is
named registry/name:tag, or name:tag without a registry). The file appears
only when the build succeeds. A docker tarball holds one platform.

A spec with several platforms builds an image index, one image per
platform; each must be one BuildKit's workers build for (natively or
through QEMU emulation), which is checked before any work starts.

BuildKit is reached at --buildkit-addr, else BUILDKIT_HOST
(unix:///path, tcp://host:port, docker-container://name); over TLS with
--buildkit-ca, and with a client certificate (--buildkit-cert,
--buildkit-key) for a buildkitd started with --tlscacert.

Builds import BuildKit's cache from the registry and export it there
(every step), so that a daemon that never built a spec reuses what another
built: one cache per image repository (<registry>/<name>:ispec-cache) and
one per base image and apt set (<registry>/ispec-cache:family-<hash>).
--cache-registry puts it elsewhere; --no-registry-cache turns it off. An
--output build uses it only with --registry-cache. A cache that cannot be
read or written never fails a build: ispec warns once.

The exit code is the worst of all specs' (2 over 3 over 1 over 0): 0 on
success, 1 when a build step failed, 2 for an invalid spec or
usage (or a base image its registry does not have), 3 when a registry
(the image's or its base's) or BuildKit is unavailable, or BuildKit's
workers cannot build a platform the spec asks for, 130 or 143 when
SIGINT or SIGTERM interrupted it (no spec is started after that). With
--json a spec that failed gets a record with "error": {"class",
"message"} (class invalid, unavailable, failed or interrupted); with
--progress json all of stderr is JSON.`

func newBuildResult(specPath string, res *ensure.Result) buildResult {
	ref := res.Ref.Name()
	if res.Output != "" {
		// Inside a tarball the image keeps the name the spec gives it.
		ref = res.Ref.String()
	}
	return buildResult{
		Spec: specPath, Ref: ref, Digest: res.Digest.String(),
		Built:   res.Outcome == ensure.OutcomeBuilt || res.Outcome == ensure.OutcomeJoined,
		Outcome: res.Outcome.String(), Output: res.Output, Duration: res.Duration.Seconds(),
		PythonResolved: res.Python,
	}
}

type buildFlags struct {
	asJSON, force, noCache, verify bool
	noRegistryCache                bool
	progress, output               string
	// The pre-build mode: concurrent builds, a results file, the
	// arguments of pyflyte register.
	jobs      int
	jsonOut   string
	imageArgs bool
}

func newBuildCmd() *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build SPEC...",
		Short: "Build and push each spec's image, only when it is absent",
		Long:  buildLong,
		Args:  minArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return runBuild(cmd, f, args) },
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object per spec: spec, ref, digest, built, output, duration_seconds, python_resolved (what a floating spec's build installed); for a spec that failed, error (class, message)")
	fl.BoolVar(&f.force, "force", false, "build and push even when the image exists")
	fl.BoolVar(&f.verify, "verify", false, "ask the registry even for tags the local index knows (after a registry was emptied)")
	fl.BoolVar(&f.noCache, "no-cache", false, "run every step again instead of reusing BuildKit's cache")
	fl.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto, tty, plain, json or quiet")
	fl.IntVarP(&f.jobs, "jobs", "j", 1, "build up to `N` distinct specs at once (parents shared by several specs are still built once)")
	fl.StringVar(&f.jsonOut, "json-out", "", "write every spec's result (spec, name, ref, digest, outcome, duration, error) and a summary to `FILE` as one JSON document, atomically")
	fl.BoolVar(&f.imageArgs, "image-args", false, "print \"--image NAME=REF@DIGEST\" for each spec built or found instead of ref@digest: the arguments pyflyte register takes")
	fl.StringVar(&f.output, "output", "", "write the image to oci:PATH (OCI layout tarball) or docker:PATH (docker load tarball) instead of pushing; always builds. With several specs, a folder (oci:DIR/) gets a NAME_TAG.tar per spec")
	fl.BoolVar(&f.noRegistryCache, "no-registry-cache", false, "neither import nor export BuildKit's cache in the registry (config registry-cache: false)")
	fl.Bool("registry-cache", true, "import and export BuildKit's cache in the registry, --output builds included (default: pushes only; env ISPEC_REGISTRY_CACHE)")
	fl.String("cache-registry", "", "registry (host[:port][/path]) for BuildKit's cache instead of each image's (env ISPEC_CACHE_REGISTRY)")
	fl.Bool("locked", false, "refuse (exit 2) a spec whose Python requirements float: packages, or requirements lines without == and --hash; a lock file (uv.lock, poetry.lock, pylock.toml) does not float (env ISPEC_LOCKED)")
	fl.String("pip-netrc", "", "netrc file with private package index credentials, given to pip as a BuildKit secret (env ISPEC_PIP_NETRC)")
	addServerFlags(fl)
	fl.String("buildkit-addr", "", "BuildKit address (env ISPEC_BUILDKIT_ADDR or BUILDKIT_HOST)")
	addBuildkitTLSFlags(fl)
	fl.StringSlice("insecure-registries", nil, "registries reached over plain HTTP besides loopback ones (env ISPEC_INSECURE_REGISTRIES)")
	return cmd
}

// checkOutput checks, before any work, that img can be written to out.
func checkOutput(img *spec.Image, out *builder.Output) error {
	// Without a registry the image is named name:tag.
	if _, err := name.NewTag(img.Identity.Ref); err != nil {
		return usageError{fmt.Errorf("%s: %w", img.File, err)}
	}
	if err := out.Check(len(img.Spec.Platform)); err != nil {
		return usageError{fmt.Errorf("%s: %w", img.File, err)}
	}
	return nil
}
