package builder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/moby/buildkit/client"
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer" // docker-container:// addresses
	_ "github.com/moby/buildkit/client/connhelper/kubepod"         // kube-pod:// addresses
	_ "github.com/moby/buildkit/client/connhelper/ssh"             // ssh:// addresses
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ispec-dev/ispec/spec"
)

// DefaultAddr is BuildKit's address when Options.Addr is empty: the
// socket of a root buildkitd.
const DefaultAddr = "unix:///run/buildkit/buildkitd.sock"

// DefaultDialTimeout bounds the check that BuildKit is reachable.
const DefaultDialTimeout = 5 * time.Second

// Options configure a Builder.
type Options struct {
	// Addr is BuildKit's address: unix:///path, tcp://host:port,
	// docker-container://name (also kube-pod:// and ssh://). Default
	// DefaultAddr. The caller decides between a flag and BUILDKIT_HOST.
	Addr string
	// DialTimeout bounds the reachability check in New. Default
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// DockerConfig holds the registry credentials (and credential helpers)
	// BuildKit uses to pull bases and push images. Nil loads Docker's
	// default config file ($DOCKER_CONFIG or ~/.docker/config.json).
	DockerConfig *configfile.ConfigFile
	// Version is the ispec version recorded in each image's
	// dev.ispec.version label. Empty: no label.
	Version string
	// TLS secures a tcp:// connection to BuildKit (mutual TLS with a
	// client certificate). Zero: a plain connection.
	TLS TLS
}

// Builder builds images on one BuildKit daemon. It is safe for concurrent
// use by several goroutines; each Build has its own BuildKit session.
type Builder struct {
	c         *client.Client
	opts      Options
	platforms []ocispecs.Platform
}

// New connects to BuildKit and checks that it answers within
// opts.DialTimeout. When it does not, the error is an *UnavailableError;
// TLS settings that cannot work are a *TLSConfigError.
func New(ctx context.Context, opts Options) (*Builder, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.DockerConfig == nil {
		opts.DockerConfig = config.LoadDefaultConfigFile(io.Discard)
	}
	if err := opts.TLS.Check(); err != nil {
		return nil, err
	}
	c, err := client.New(ctx, opts.Addr, opts.TLS.clientOpts()...)
	if err != nil {
		return nil, &UnavailableError{Addr: opts.Addr, Err: err}
	}
	wctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	workers, err := c.ListWorkers(wctx)
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to buildkit: %w", ctx.Err())
		}
		return nil, &UnavailableError{Addr: opts.Addr, Err: unwrapGRPC(err)}
	}
	if len(workers) == 0 {
		c.Close()
		return nil, &UnavailableError{Addr: opts.Addr, Err: errors.New("buildkitd has no workers")}
	}
	b := &Builder{c: c, opts: opts}
	for _, w := range workers {
		b.platforms = append(b.platforms, w.Platforms...)
	}
	return b, nil
}

// Close closes the connection to BuildKit.
func (b *Builder) Close() error { return b.c.Close() }

// BuildOptions are the choices of one build.
type BuildOptions struct {
	// Base is the base image reference to build on, overriding img.Base
	// and the lock's pins. Required for a nested spec (img.Parent set):
	// the parent image's ref@digest, once it is built.
	Base string
	// Ref is where the image is pushed. Default img.Identity.Ref.
	Ref string
	// Progress receives the build's progress events. Build closes it
	// when it returns. Nil: progress is not recorded.
	Progress *Progress
	// Secrets are the contents of the spec's pip_secret_mounts, by their
	// source. A source not in the map is read from its file, relative to
	// the spec file's folder, when pip runs.
	Secrets map[string][]byte
	// PipNetrc is a netrc file with credentials for private package
	// indexes (from the configuration, not the spec). It is mounted as a
	// BuildKit secret while pip runs: never in a layer, a log or the hash.
	PipNetrc []byte
	// NoCache runs every step again instead of reusing BuildKit's cache
	// (cache mounts are still used). With pinned inputs the image is the
	// same, digest included.
	NoCache bool
	// BeforePush is called once every step has succeeded and before the
	// image is exported (pushed or written): an error from it stops the
	// build before anything is pushed, and Build returns that error. Nil:
	// no check.
	BeforePush func(ctx context.Context) error
	// Output writes the image to a local tarball instead of pushing it;
	// Ref then only names the image inside the file, and no registry is
	// contacted except to pull the base. Nil: push to Ref.
	Output *Output
	// CacheImports are registry cache references (RegistryCacheRefs
	// computes ispec's) BuildKit reads its cache from before building, in
	// order. A reference that does not exist or cannot be read is
	// skipped: the steps run.
	CacheImports []string
	// CacheExports are registry cache references the build's cache is
	// pushed to, every intermediate step included (OCI media types with an
	// image manifest). Exporting never changes the image or its digest;
	// an export that fails leaves the build successful, with one warning
	// in Result.Warnings.
	CacheExports []string
	// Linear builds the steps one after another (Input.Linear) even when
	// the worker can merge branches. The image has the same files, config
	// and layer history either way.
	Linear bool

	// family is the registry cache family reference WithRegistryCache put
	// in CacheImports and CacheExports, keyed by the spec's base names;
	// the build keys it by the digests they resolve to (pinnedFamily).
	family string
	// familyPrefix is where family refs live (see RegistryCacheRefs).
	familyPrefix string
}

// Result is a built and pushed image.
type Result struct {
	// Ref is where the image was pushed (registry/repository:tag), or its
	// name in BuildOptions.Output.
	Ref string
	// Digest is the pushed manifest's (or index's) digest.
	Digest string
	// Duration is how long the build took, push included.
	Duration time.Duration
	// Warnings are problems that did not fail the build, each meant to be
	// shown once (a registry cache that could not be written or read).
	Warnings []string
	// Daemon is the address of the BuildKit daemon that built it.
	Daemon string
	// Python is, for a spec whose Python requirements float
	// (RecordsInstalled), what each platform's image got: every
	// distribution of its virtual environment as name==version, sorted,
	// by platform (linux/amd64). The image carries the same list in its
	// LabelPythonResolved label. Nil for other specs.
	Python map[string][]string
}

// Build builds img for each of its platforms (an image index when there
// are several) and pushes it to its ref, or writes it to opts.Output. The
// push happens only after every step succeeded, so a failed build leaves
// no tag (and no output file). A failing step is a
// *StepError with its log's tail; an unsupported platform a *PlatformError
// before any work; a lost daemon an *UnavailableError; a failed export a
// *PushError.
func (b *Builder) Build(ctx context.Context, img *spec.Image, opts BuildOptions) (*Result, error) {
	start := time.Now()
	prog := opts.Progress
	if prog == nil {
		prog = NewProgress()
	}
	defer prog.Close()
	j, err := b.plan(img, opts, prog)
	if err != nil {
		return nil, err
	}
	solveOpt := b.solveOpt(j)
	resp, tr, err := b.runPushing(ctx, j, solveOpt)
	if err != nil {
		return nil, err
	}
	dgst, err := j.finish(resp)
	if err != nil {
		return nil, err
	}
	// The registry cache is exported after the image is pushed (or
	// written), in a solve of its own (see exportCacheAfterPush), keyed by
	// the bases the build resolved.
	cacheOpts := opts.pinnedFamily(img, j.pins.all())
	if len(opts.CacheExports) > 0 {
		solveOnly := func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
			return b.solve(ctx, c, j.img, j.opts, j.plats, j.prog, j.pins, j.installed)
		}
		b.exportCacheAfterPush(ctx, solveOpt, solveOnly, cacheOpts, tr, prog)
	}
	return &Result{Ref: j.ref, Digest: dgst, Duration: time.Since(start), Daemon: b.opts.Addr, Warnings: tr.cacheWarnings(cacheOpts.CacheImports, cacheOpts.CacheExports), Python: j.installed.all()}, nil
}

// job is one Build, checked: where the image goes and for which
// platforms.
type job struct {
	img   *spec.Image
	opts  BuildOptions
	ref   string
	plats []ocispecs.Platform
	prog  *Progress
	// out is the file an Output build writes; nil when it pushes.
	out    *outputFile
	export client.ExportEntry
	// pins are the bases the build resolved, used by each of its solves.
	pins *basePins
	// installed is what each platform's image installed, for a spec
	// whose Python requirements float.
	installed *installedSets
}

// plan checks a build before BuildKit is asked: its platforms are ones
// the workers build, every graph can be made, the output can hold it.
func (b *Builder) plan(img *spec.Image, opts BuildOptions, prog *Progress) (*job, error) {
	j := &job{img: img, opts: opts, ref: opts.Ref, prog: prog, pins: &basePins{}, installed: &installedSets{}}
	if j.ref == "" {
		j.ref = img.Identity.Ref
	}
	if img.Parent != nil && opts.Base == "" {
		return nil, errors.New("building a nested spec needs the parent image's ref@digest as BuildOptions.Base")
	}
	var err error
	if j.plats, err = b.checkPlatforms(img.Spec.Platform); err != nil {
		return nil, err
	}
	// Every graph is made once before BuildKit is asked, so a spec the
	// recipe cannot build fails before any work.
	for _, p := range j.plats {
		if _, err := Steps(img, Input{Platform: p}); err != nil {
			return nil, err
		}
	}
	j.export = pushExport(j.ref)
	if opts.Output != nil {
		if err := opts.Output.Check(len(j.plats)); err != nil {
			return nil, err
		}
		j.out = &outputFile{out: opts.Output}
		j.export = j.out.exportEntry(j.ref)
	}
	return j, nil
}

// pushExport is the export of a build that pushes to ref: reproducible
// timestamps, OCI media types.
func pushExport(ref string) client.ExportEntry {
	return client.ExportEntry{
		Type: client.ExporterImage,
		Attrs: map[string]string{
			"name":              ref,
			"push":              "true",
			"oci-mediatypes":    "true",
			"rewrite-timestamp": "true",
			"source-date-epoch": "0",
		},
	}
}

// solveOpt is the session of a build: its export, its local folders, the
// registry credentials and its secrets.
func (b *Builder) solveOpt(j *job) client.SolveOpt {
	return client.SolveOpt{
		Exports:       []client.ExportEntry{j.export},
		FrontendAttrs: map[string]string{"build-arg:SOURCE_DATE_EPOCH": "0"},
		LocalMounts:   LocalMounts(j.img),
		Session: []session.Attachable{
			authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
				AuthConfigProvider: authprovider.LoadAuthConfig(b.opts.DockerConfig),
			}),
			secretsprovider.NewSecretProvider(newSecretStore(j.img, j.opts.Secrets, j.opts.PipNetrc)),
		},
		// Imports go with the gateway's solve requests (see solve): a
		// client-side build reads no cache from SolveOpt.CacheImports.
	}
}

// runPushing solves and exports the build, pushing again (up to
// pushAttempts) when the registry did not know a blob the manifest names.
// BeforePush runs between the solve and the push; its error is returned
// as is.
func (b *Builder) runPushing(ctx context.Context, j *job, solveOpt client.SolveOpt) (*client.SolveResponse, *tracker, error) {
	var stopped error // BeforePush's
	buildFunc := func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
		res, err := b.solve(ctx, c, j.img, j.opts, j.plats, j.prog, j.pins, j.installed)
		if err != nil || j.opts.BeforePush == nil {
			return res, err
		}
		// The export (the push) runs after this function returns.
		if err := j.opts.BeforePush(ctx); err != nil {
			stopped = err
			return nil, err
		}
		return res, nil
	}
	for attempt := 1; ; attempt++ {
		tr := newTracker()
		resp, err := b.run(ctx, solveOpt, buildFunc, tr, j.prog, quietMissingCache)
		if err == nil {
			return resp, tr, nil
		}
		if j.out != nil {
			j.out.discard()
		}
		if stopped != nil {
			// BuildKit may report it as its own error: return the hook's.
			return nil, nil, stopped
		}
		err = b.buildError(ctx, j.ref, tr, err, j.opts.Output)
		if attempt >= pushAttempts || !blobUnknownPush(err) {
			return nil, nil, err
		}
		publishNotice(j.prog, PushRetryStep, fmt.Sprintf("%v\nthe registry did not know a blob the image's manifest names; the image is built, pushing it again (attempt %d of %d)\n", err, attempt+1, pushAttempts))
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("building %s: %w", j.ref, ctx.Err())
		case <-time.After(time.Duration(attempt) * pushRetryDelay):
		}
	}
}

// finish returns the digest BuildKit exported, and puts an Output build's
// file in place.
func (j *job) finish(resp *client.SolveResponse) (string, error) {
	dgst := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if dgst == "" {
		if j.out != nil {
			j.out.discard()
		}
		return "", fmt.Errorf("building %s: buildkit returned no image digest", j.ref)
	}
	if j.out != nil {
		if err := j.out.commit(); err != nil {
			return "", err
		}
	}
	return dgst, nil
}

// Addr returns the address of the daemon b builds on.
func (b *Builder) Addr() string { return b.opts.Addr }

// Ping checks that the daemon answers and has a worker (ListWorkers);
// when it does not, the error is an *UnavailableError.
func (b *Builder) Ping(ctx context.Context) error {
	workers, err := b.c.ListWorkers(ctx)
	if err != nil {
		return &UnavailableError{Addr: b.opts.Addr, Err: unwrapGRPC(err)}
	}
	if len(workers) == 0 {
		return &UnavailableError{Addr: b.opts.Addr, Err: errors.New("buildkitd has no workers")}
	}
	return nil
}

// solve runs inside BuildKit's gateway: per platform it resolves the base
// config, solves the graph and attaches the image config. When the daemon
// cannot merge, the graph is linear and prog says so once.
func (b *Builder) solve(ctx context.Context, c gateway.Client, img *spec.Image, opts BuildOptions, plats []ocispecs.Platform, prog *Progress, pins *basePins, installed *installedSets) (*gateway.Result, error) {
	linear := opts.Linear
	if !linear {
		if err := mergeSupported(c.BuildOpts().LLBCaps); err != nil {
			linear = true
			publishNotice(prog, LinearFallbackStep, fmt.Sprintf("the BuildKit daemon cannot merge layers (%v): the steps run one after another, as in a Dockerfile\n", err))
		}
	}
	// Every platform's base is resolved (once per build: pins) before
	// any step runs, since the registry cache family is keyed by them.
	ins := make([]resolvedBase, len(plats))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range plats {
		g.Go(func() error {
			var err error
			ins[i], err = resolveBase(gctx, c, img, opts, p, linear, pins)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	imports := cacheImports(opts.pinnedFamily(img, pins.all()).CacheImports)
	out := make([]platformImage, len(plats))
	g, gctx = errgroup.WithContext(ctx)
	for i := range plats {
		g.Go(func() error {
			var err error
			out[i], err = b.solvePlatform(gctx, c, img, opts, ins[i], imports, installed)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return exportResult(plats, out)
}

// resolvedBase is one platform's base, resolved: the graph's input and
// the digest its tag named.
type resolvedBase struct {
	in   Input
	dgst string
}

// resolveBase resolves the base image of platform p (once per build:
// pins keeps the digest the first solve found) and reads its accounts
// when the spec's user needs them.
func resolveBase(ctx context.Context, c gateway.Client, img *spec.Image, opts BuildOptions, p ocispecs.Platform, linear bool, pins *basePins) (resolvedBase, error) {
	base := baseRef(img, opts.Base, p)
	key := platforms.Format(p)
	from := pins.get(key)
	if from == "" {
		from = base
	}
	_, dgst, baseConf, err := c.ResolveImageConfig(ctx, from, sourceresolver.Opt{
		LogName:  resolvePrefix + base,
		ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &p, ResolveMode: llb.ResolveModeDefault.String()},
	})
	if err != nil {
		return resolvedBase{}, fmt.Errorf("resolving base image %s: %w", base, err)
	}
	from = pinBase(from, dgst)
	pins.set(key, from)
	in := Input{Platform: p, Base: base, From: from, BaseConfig: baseConf, PipNetrc: len(opts.PipNetrc) > 0, Linear: linear}
	if need, err := needsAccounts(img.Spec, baseConf); err != nil {
		return resolvedBase{}, err
	} else if need {
		if in.Accounts, err = readAccounts(ctx, c, base, from, p); err != nil {
			return resolvedBase{}, err
		}
	}
	return resolvedBase{in: in, dgst: dgst.String()}, nil
}

// platformImage is one platform's solved filesystem and image config.
type platformImage struct {
	ref      gateway.Reference
	config   []byte
	baseConf []byte
}

// solvePlatform solves the graph on one platform's resolved base and
// makes the image config; for a spec whose Python requirements float it
// lists what the image installed into installed and the config's labels.
func (b *Builder) solvePlatform(ctx context.Context, c gateway.Client, img *spec.Image, opts BuildOptions, rb resolvedBase, imports []gateway.CacheOptionsEntry, installed *installedSets) (platformImage, error) {
	ref, st, mopts, err := solveGraph(ctx, c, img, rb.in, opts, imports)
	if err != nil {
		return platformImage{}, err
	}
	ci := ConfigInput{BaseDigest: rb.dgst, Version: b.opts.Version}
	if RecordsInstalled(img) {
		if ci.PythonResolved, err = readInstalled(ctx, c, st, mopts, imports); err != nil {
			return platformImage{}, err
		}
		installed.set(platforms.Format(rb.in.Platform), ci.PythonResolved)
	}
	cfg, err := Config(img, rb.in, ci)
	if err != nil {
		return platformImage{}, err
	}
	dt, err := json.Marshal(cfg)
	if err != nil {
		return platformImage{}, fmt.Errorf("encoding image config: %w", err)
	}
	return platformImage{ref: ref, config: dt, baseConf: rb.in.BaseConfig}, nil
}

// solveGraph solves the graph of img on in, importing the registry cache;
// it returns the graph and its marshalling options too.
func solveGraph(ctx context.Context, c gateway.Client, img *spec.Image, in Input, opts BuildOptions, imports []gateway.CacheOptionsEntry) (gateway.Reference, llb.State, []llb.ConstraintsOpt, error) {
	st, err := Graph(img, in)
	if err != nil {
		return nil, llb.State{}, nil, err
	}
	mopts := []llb.ConstraintsOpt{llb.Platform(in.Platform)}
	if opts.NoCache {
		mopts = append(mopts, llb.IgnoreCache)
	}
	def, err := st.Marshal(ctx, mopts...)
	if err != nil {
		return nil, llb.State{}, nil, fmt.Errorf("marshalling graph: %w", err)
	}
	res, err := c.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB(), CacheImports: imports})
	if err != nil {
		return nil, llb.State{}, nil, err
	}
	ref, err := res.SingleRef()
	return ref, st, mopts, err
}

// exportResult is what the image exporter takes: one platform's image, or
// one per platform for an index.
func exportResult(plats []ocispecs.Platform, out []platformImage) (*gateway.Result, error) {
	res := gateway.NewResult()
	var eps exptypes.Platforms
	for i, p := range plats {
		id := platforms.Format(p)
		eps.Platforms = append(eps.Platforms, exptypes.Platform{ID: id, Platform: p})
		if len(plats) == 1 {
			res.SetRef(out[i].ref)
			res.AddMeta(exptypes.ExporterImageConfigKey, out[i].config)
			res.AddMeta(exptypes.ExporterImageBaseConfigKey, out[i].baseConf)
			continue
		}
		res.AddRef(id, out[i].ref)
		res.AddMeta(exptypes.ExporterImageConfigKey+"/"+id, out[i].config)
		res.AddMeta(exptypes.ExporterImageBaseConfigKey+"/"+id, out[i].baseConf)
	}
	dt, err := json.Marshal(eps)
	if err != nil {
		return nil, fmt.Errorf("encoding platforms: %w", err)
	}
	res.AddMeta(exptypes.ExporterPlatformsKey, dt)
	return res, nil
}

// buildError turns BuildKit's error into one of the package's typed errors.
// A failed export is a *PushError, or a plain error when the image was
// being written to output.
func (b *Builder) buildError(ctx context.Context, ref string, tr *tracker, err error, output *Output) error {
	if ctx.Err() != nil {
		return fmt.Errorf("building %s: %w", ref, ctx.Err())
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.Unavailable {
		// The daemon may be gone, or a registry BuildKit talked to was
		// unavailable: ask the daemon.
		wctx, cancel := context.WithTimeout(context.Background(), b.opts.DialTimeout)
		_, werr := b.c.ListWorkers(wctx)
		cancel()
		if werr != nil || tr.failed() == nil {
			// Gone, or gone and back (a restart): no step failed.
			return &UnavailableError{Addr: b.opts.Addr, Err: unwrapGRPC(err)}
		}
	}
	if v := tr.failed(); v != nil {
		switch {
		case strings.HasPrefix(v.name, resolvePrefix):
			return baseError(strings.TrimPrefix(v.name, resolvePrefix), unwrapGRPC(err))
		case strings.HasPrefix(v.name, "[ispec]"):
			return &StepError{Step: v.name, Log: v.tail(), Err: unwrapGRPC(err)}
		case (strings.HasPrefix(v.name, "exporting") || strings.HasPrefix(v.name, "sending")) && output != nil:
			return fmt.Errorf("writing %s to %s: %w", ref, output, unwrapGRPC(err))
		case strings.HasPrefix(v.name, "exporting") || strings.HasPrefix(v.name, "pushing"):
			return &PushError{Ref: ref, Err: unwrapGRPC(err)}
		}
	}
	return fmt.Errorf("building %s: %w", ref, unwrapGRPC(err))
}

// unwrapGRPC returns a gRPC error's message without the transport noise,
// keeping it matchable.
func unwrapGRPC(err error) error {
	if s, ok := status.FromError(err); ok && s.Message() != "" {
		return &grpcError{msg: s.Message(), err: err}
	}
	return err
}

type grpcError struct {
	msg string
	err error
}

func (e *grpcError) Error() string { return e.msg }
func (e *grpcError) Unwrap() error { return e.err }

// checkPlatforms parses the spec's platforms and checks the workers build
// for each.
func (b *Builder) checkPlatforms(specPlats []string) ([]ocispecs.Platform, error) {
	var supported []string
	have := map[string]bool{}
	for _, p := range b.platforms {
		s := platforms.Format(platforms.Normalize(p))
		if !have[s] {
			have[s] = true
			supported = append(supported, s)
		}
	}
	var out []ocispecs.Platform
	for _, s := range specPlats {
		p, err := platforms.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", s, err)
		}
		p = platforms.Normalize(p)
		if !have[platforms.Format(p)] {
			return nil, &PlatformError{Platform: s, Supported: supported}
		}
		out = append(out, p)
	}
	return out, nil
}

// baseRef is the base image of one platform: the override, else the
// lock's pinned digest for the platform, else img.Base.
func baseRef(img *spec.Image, override string, p ocispecs.Platform) string {
	if override != "" {
		return override
	}
	return img.BaseRef(platforms.Format(p))
}

// secretStore serves the contents of pip_secret_mounts, the top-level
// ones' and the layers', by their position (see secretID,
// layerSecretID): from memory when the caller gave them, else from the
// source file when BuildKit asks. A secret given as an env variable loses
// one trailing newline, as $(cat file) would.
type secretStore struct {
	data  map[string][]byte
	files map[string]string
	env   map[string]bool
}

func newSecretStore(img *spec.Image, given map[string][]byte, netrc []byte) secrets.SecretStore {
	s := &secretStore{data: map[string][]byte{}, files: map[string]string{}, env: map[string]bool{}}
	if len(netrc) > 0 {
		s.data[NetrcSecretID] = netrc
	}
	s.add(img, given, img.Spec.PipSecretMounts, img.Secrets, secretID)
	for i, l := range img.Spec.Layers {
		var resolved []string
		if i < len(img.LayerSecrets) {
			resolved = img.LayerSecrets[i]
		}
		s.add(img, given, l.Pip.SecretMounts, resolved, func(j int) string { return layerSecretID(i, j) })
	}
	return s
}

// add serves mounts under the ids id gives them: from given by their
// source, else from the files the spec's checks resolved them to
// (resolved, in the same order), else from their source.
func (s *secretStore) add(img *spec.Image, given map[string][]byte, mounts []spec.SecretMount, resolved []string, id func(int) string) {
	for i, m := range mounts {
		id := id(i)
		s.env[id] = m.Env != ""
		if dt, ok := given[m.Source]; ok {
			s.data[id] = dt
			continue
		}
		if i < len(resolved) {
			// Where the spec's checks found it, symlinks resolved.
			s.files[id] = resolved[i]
			continue
		}
		p := m.Source
		if !filepath.IsAbs(p) {
			p = filepath.Join(img.Dir, filepath.FromSlash(p))
		}
		s.files[id] = p
	}
}

// GetSecret implements secrets.SecretStore. Errors name the secret's
// position, never its contents.
func (s *secretStore) GetSecret(ctx context.Context, id string) ([]byte, error) {
	dt, err := s.get(id)
	if err != nil || !s.env[id] {
		return dt, err
	}
	dt = bytes.TrimSuffix(dt, []byte("\n"))
	return bytes.TrimSuffix(dt, []byte("\r")), nil
}

// get is a secret's contents as stored.
func (s *secretStore) get(id string) ([]byte, error) {
	if dt, ok := s.data[id]; ok {
		return dt, nil
	}
	p, ok := s.files[id]
	if !ok {
		return nil, fmt.Errorf("secret %s: %w", id, secrets.ErrNotFound)
	}
	dt, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading pip secret %s: %w", id, err)
	}
	return dt, nil
}
