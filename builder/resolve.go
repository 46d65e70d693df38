package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// reportDir is where pip writes its installation report while resolving.
const reportDir = "/run/ispec/report"

// reportFile is the report's name in reportDir and in the local output.
const reportFile = "pip-report.json"

// constraintsFile is where ResolveGraph mounts the constraints.
const constraintsFile = "/run/ispec/constraints/constraints.txt"

// ResolveStepName is the name of the step that resolves a spec's Python
// requirements.
const ResolveStepName = "[ispec] pip install --dry-run --ignore-installed --report"

// NeedsResolve reports whether img has Python requirements `ispec lock`
// resolves: packages, or a requirements file that is not a Python lock.
func NeedsResolve(img *spec.Image) bool {
	return !img.NamesPythonLock() && (len(img.Spec.Packages) > 0 || img.Requirements != nil)
}

// ResolveGraph returns the graph that resolves img's Python requirements
// (packages and the requirements file with its includes) on its base for
// one platform, with pip's own resolver and the spec's index options and
// secrets: the base, the virtual environment, then `pip install --dry-run
// --ignore-installed --report` into a folder of its own, which is the
// state returned (it holds pip-report.json). The pip step never comes
// from BuildKit's cache. constraints, when not empty,
// is a pip constraints file (-c) the resolution must satisfy. It does no
// I/O.
func ResolveGraph(img *spec.Image, in Input, constraints []byte) (llb.State, error) {
	base, err := parseConfig(in.BaseConfig)
	if err != nil {
		return llb.State{}, err
	}
	pip, err := newPipArgs(img.Spec)
	if err != nil {
		return llb.State{}, err
	}
	st := llb.Image(in.Base, llb.Platform(in.Platform), llb.WithCustomName("[ispec] base "+in.Base))
	if len(in.BaseConfig) > 0 {
		if st, err = st.WithImageConfig(in.BaseConfig); err != nil {
			return llb.State{}, fmt.Errorf("reading base image config: %w", err)
		}
	}
	st = venvStep(pythonExec(img.Spec), venvPath(base.Config.Env)).Apply(st.Platform(in.Platform).Dir("/"))
	args := append(append([]string{}, pip...), "--dry-run", "--ignore-installed", "--quiet", "--report", path.Join(reportDir, reportFile))
	args = append(args, img.Spec.Packages...)
	plat := platforms.Format(in.Platform)
	opts := pipOptions(plat, img.Spec.PipSecretMounts, in.PipNetrc)
	if img.Requirements != nil && !img.NamesPythonLock() {
		args = append(args, "-r", path.Join(requirementsDir, img.RequirementsFile))
		opts = append(opts, llb.AddMount(requirementsDir, localState(localRequirements, img.Requirements, "requirements"), llb.Readonly))
	}
	if len(constraints) > 0 {
		args = append(args, "-c", constraintsFile)
		c := llb.Scratch().File(llb.Mkfile(path.Base(constraintsFile), 0o644, constraints, llb.WithCreatedTime(*epoch())), llb.WithCustomName("[ispec] constraints"))
		opts = append(opts, llb.AddMount(path.Dir(constraintsFile), c, llb.Readonly))
	}
	// A resolution answers what the index serves now: never from
	// BuildKit's cache.
	opts = append(opts, llb.Args(args), llb.IgnoreCache, llb.WithCustomName(ResolveStepName))
	run := st.Run(opts...)
	return run.AddMount(reportDir, llb.Scratch()), nil
}

// ResolveOptions are the inputs of ResolvePython besides the spec.
type ResolveOptions struct {
	// Base is the base image reference to resolve on (a pinned ref@digest
	// is best); required.
	Base string
	// Platform is the platform to resolve for (normalized, linux/amd64).
	Platform string
	// Constraints is a pip constraints file the resolution must satisfy
	// (to keep pins while one package moves); nil: none.
	Constraints []byte
	// Secrets and PipNetrc are as in BuildOptions.
	Secrets  map[string][]byte
	PipNetrc []byte
	// Progress receives the solve's progress; nil: not recorded.
	Progress *Progress
}

// ResolvePython resolves img's Python requirements for one platform with
// pip's resolver on the base image, inside BuildKit, and reads pip's
// report back through BuildKit's local output: every distribution pip
// would install, with the artifact's file name, URL and sha256. A failing
// pip is a *StepError; a distribution whose index gave no sha256 is an
// error naming it.
func (b *Builder) ResolvePython(ctx context.Context, img *spec.Image, opts ResolveOptions) ([]pylock.Pin, error) {
	prog := opts.Progress
	if prog == nil {
		prog = NewProgress()
	}
	defer prog.Close()
	p, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	out, err := os.MkdirTemp("", "ispec-resolve-*")
	if err != nil {
		return nil, fmt.Errorf("resolving Python requirements: %w", err)
	}
	defer os.RemoveAll(out)
	solveOpt := client.SolveOpt{
		Exports:     []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: out}},
		LocalMounts: LocalMounts(img),
		Session: []session.Attachable{
			authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
				AuthConfigProvider: authprovider.LoadAuthConfig(b.opts.DockerConfig),
			}),
			secretsprovider.NewSecretProvider(newSecretStore(img, opts.Secrets, opts.PipNetrc)),
		},
	}
	if img.Requirements != nil && !img.NamesPythonLock() {
		// Pins from the spec's own lock leave the requirements file out
		// of a build; the resolution reads it.
		solveOpt.LocalMounts[localRequirements] = newTreeFS(img.Requirements, singleFileName)
	}
	fn := func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
		_, _, baseConf, err := c.ResolveImageConfig(ctx, opts.Base, sourceresolver.Opt{
			LogName:  resolvePrefix + opts.Base,
			ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &p, ResolveMode: llb.ResolveModeDefault.String()},
		})
		if err != nil {
			return nil, fmt.Errorf("resolving base image %s: %w", opts.Base, err)
		}
		st, err := ResolveGraph(img, Input{Platform: p, Base: opts.Base, BaseConfig: baseConf, PipNetrc: len(opts.PipNetrc) > 0}, opts.Constraints)
		if err != nil {
			return nil, err
		}
		def, err := st.Marshal(ctx, llb.Platform(p))
		if err != nil {
			return nil, fmt.Errorf("marshalling graph: %w", err)
		}
		return c.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true})
	}
	tr := newTracker()
	if _, err := b.run(ctx, solveOpt, fn, tr, prog, quietMissingCache); err != nil {
		return nil, b.buildError(ctx, img.Identity.Ref, tr, err, nil)
	}
	data, err := os.ReadFile(filepath.Join(out, reportFile))
	if err != nil {
		return nil, fmt.Errorf("reading pip's report: %w", err)
	}
	return ParseReport(data)
}

func parsePlatform(s string) (ocispecs.Platform, error) {
	parts := strings.Split(spec.NormalizePlatform(s), "/")
	if len(parts) < 2 {
		return ocispecs.Platform{}, fmt.Errorf("platform %q: expected os/arch[/variant]", s)
	}
	p := ocispecs.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	return p, nil
}

// pipReport is the part of pip's installation report (pip install
// --report, format version 1) a lock needs.
type pipReport struct {
	Version string `json:"version"`
	Install []struct {
		DownloadInfo struct {
			URL         string `json:"url"`
			ArchiveInfo *struct {
				Hash   string            `json:"hash"`
				Hashes map[string]string `json:"hashes"`
			} `json:"archive_info"`
			VCSInfo *struct{} `json:"vcs_info"`
			DirInfo *struct{} `json:"dir_info"`
		} `json:"download_info"`
		Metadata struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"metadata"`
	} `json:"install"`
}

// ErrNoHash is matched by the error ParseReport returns for a
// distribution whose index gave no sha256.
var ErrNoHash = errors.New("no sha256 for a distribution")

// ParseReport reads pip's installation report into pins, sorted by name.
func ParseReport(data []byte) ([]pylock.Pin, error) {
	var r pipReport
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reading pip's report: %w", err)
	}
	if r.Version != "1" {
		return nil, fmt.Errorf("pip's report has version %q; expected 1", r.Version)
	}
	var pins []pylock.Pin
	for _, it := range r.Install {
		name := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(it.Metadata.Name))
		di := it.DownloadInfo
		if di.VCSInfo != nil || di.DirInfo != nil || di.ArchiveInfo == nil {
			return nil, fmt.Errorf("%s %s comes from %s, not an archive: it cannot be pinned by hash", name, it.Metadata.Version, di.URL)
		}
		sum := di.ArchiveInfo.Hashes["sha256"]
		if alg, hex, ok := strings.Cut(di.ArchiveInfo.Hash, "="); sum == "" && ok && alg == "sha256" {
			sum = hex
		}
		if sum == "" {
			return nil, fmt.Errorf("%s %s (%s): the index gave no sha256: %w", name, it.Metadata.Version, di.URL, ErrNoHash)
		}
		file := di.URL
		if i := strings.LastIndex(file, "/"); i >= 0 {
			file = file[i+1:]
		}
		file, _, _ = strings.Cut(file, "#")
		pins = append(pins, pylock.Pin{Name: name, Version: it.Metadata.Version, File: file, URL: strings.SplitN(di.URL, "#", 2)[0], SHA256: strings.ToLower(sum)})
	}
	sort.Slice(pins, func(i, j int) bool { return pins[i].Name < pins[j].Name })
	return pins, nil
}
