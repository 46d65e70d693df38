package builder

import (
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

	ref := opts.Ref
	if ref == "" {
		ref = img.Identity.Ref
	}
	if img.Parent != nil && opts.Base == "" {
		return nil, errors.New("building a nested spec needs the parent image's ref@digest as BuildOptions.Base")
	}
	plats, err := b.checkPlatforms(img.Spec.Platform)
	if err != nil {
		return nil, err
	}
	// Every graph is made once before BuildKit is asked, so a spec the
	// recipe cannot build fails before any work.
	for _, p := range plats {
		if _, err := Steps(img, Input{Platform: p}); err != nil {
			return nil, err
		}
	}
	export := client.ExportEntry{
		Type: client.ExporterImage,
		Attrs: map[string]string{
			"name":              ref,
			"push":              "true",
			"oci-mediatypes":    "true",
			"rewrite-timestamp": "true",
			"source-date-epoch": "0",
		},
	}
	var out *outputFile
	if opts.Output != nil {
		if err := opts.Output.Check(len(plats)); err != nil {
			return nil, err
		}
		out = &outputFile{out: opts.Output}
		export = out.exportEntry(ref)
	}

	solveOpt := client.SolveOpt{
		Exports:       []client.ExportEntry{export},
		FrontendAttrs: map[string]string{"build-arg:SOURCE_DATE_EPOCH": "0"},
		LocalMounts:   LocalMounts(img),
		Session: []session.Attachable{
			authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
				AuthConfigProvider: authprovider.LoadAuthConfig(b.opts.DockerConfig),
			}),
			secretsprovider.NewSecretProvider(newSecretStore(img, opts.Secrets, opts.PipNetrc)),
		},
		// Imports go with the gateway's solve requests (see solve): a
		// client-side build reads no cache from SolveOpt.CacheImports.
	}
	// The registry cache is exported after the image is pushed (or
	// written), in a solve of its own (see exportCacheAfterPush), once the
	// bases it is keyed by are resolved.
	afterPush := len(opts.CacheExports) > 0
	pins := &basePins{}

	var stopped error // BeforePush's
	buildFunc := func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
		res, err := b.solve(ctx, c, img, opts, plats, prog, pins)
		if err != nil || opts.BeforePush == nil {
			return res, err
		}
		// The export (the push) runs after this function returns.
		if err := opts.BeforePush(ctx); err != nil {
			stopped = err
			return nil, err
		}
		return res, nil
	}
	var (
		tr   *tracker
		resp *client.SolveResponse
	)
	for attempt := 1; ; attempt++ {
		tr = newTracker()
		resp, err = b.run(ctx, solveOpt, buildFunc, tr, prog, quietMissingCache)
		if err == nil {
			break
		}
		if out != nil {
			out.discard()
		}
		if stopped != nil {
			// BuildKit may report it as its own error: return the hook's.
			return nil, stopped
		}
		err = b.buildError(ctx, ref, tr, err, opts.Output)
		if attempt >= pushAttempts || !blobUnknownPush(err) {
			return nil, err
		}
		publishNotice(prog, PushRetryStep, fmt.Sprintf("%v\nthe registry did not know a blob the image's manifest names; the image is built, pushing it again (attempt %d of %d)\n", err, attempt+1, pushAttempts))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("building %s: %w", ref, ctx.Err())
		case <-time.After(time.Duration(attempt) * pushRetryDelay):
		}
	}
	dgst := resp.ExporterResponse[exptypes.ExporterImageDigestKey]
	if dgst == "" {
		if out != nil {
			out.discard()
		}
		return nil, fmt.Errorf("building %s: buildkit returned no image digest", ref)
	}
	if out != nil {
		if err := out.commit(); err != nil {
			return nil, err
		}
	}
	cacheOpts := opts.pinnedFamily(img, pins.all())
	if afterPush {
		solveOnly := func(ctx context.Context, c gateway.Client) (*gateway.Result, error) {
			return b.solve(ctx, c, img, opts, plats, prog, pins)
		}
		b.exportCacheAfterPush(ctx, solveOpt, solveOnly, cacheOpts, tr, prog)
	}
	return &Result{Ref: ref, Digest: dgst, Duration: time.Since(start), Daemon: b.opts.Addr, Warnings: tr.cacheWarnings(cacheOpts.CacheImports, cacheOpts.CacheExports)}, nil
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
func (b *Builder) solve(ctx context.Context, c gateway.Client, img *spec.Image, opts BuildOptions, plats []ocispecs.Platform, prog *Progress, pins *basePins) (*gateway.Result, error) {
	type built struct {
		ref      gateway.Reference
		config   []byte
		baseConf []byte
	}
	type resolved struct {
		in   Input
		dgst string
	}
	linear := opts.Linear
	if !linear {
		if err := mergeSupported(c.BuildOpts().LLBCaps); err != nil {
			linear = true
			publishNotice(prog, LinearFallbackStep, fmt.Sprintf("the BuildKit daemon cannot merge layers (%v): the steps run one after another, as in a Dockerfile\n", err))
		}
	}
	// Every platform's base is resolved (once per build: pins) before
	// any step runs, since the registry cache family is keyed by them.
	ins := make([]resolved, len(plats))
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range plats {
		g.Go(func() error {
			base := baseRef(img, opts.Base, p)
			key := platforms.Format(p)
			from := pins.get(key)
			if from == "" {
				from = base
			}
			_, dgst, baseConf, err := c.ResolveImageConfig(gctx, from, sourceresolver.Opt{
				LogName:  resolvePrefix + base,
				ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &p, ResolveMode: llb.ResolveModeDefault.String()},
			})
			if err != nil {
				return fmt.Errorf("resolving base image %s: %w", base, err)
			}
			from = pinBase(from, dgst)
			pins.set(key, from)
			in := Input{Platform: p, Base: base, From: from, BaseConfig: baseConf, PipNetrc: len(opts.PipNetrc) > 0, Linear: linear}
			if need, err := needsAccounts(img.Spec, baseConf); err != nil {
				return err
			} else if need {
				if in.Accounts, err = readAccounts(gctx, c, base, from, p); err != nil {
					return err
				}
			}
			ins[i] = resolved{in: in, dgst: dgst.String()}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	imports := cacheImports(opts.pinnedFamily(img, pins.all()).CacheImports)
	out := make([]built, len(plats))
	g, gctx = errgroup.WithContext(ctx)
	for i, p := range plats {
		g.Go(func() error {
			in, dgst := ins[i].in, ins[i].dgst
			baseConf := in.BaseConfig
			st, err := Graph(img, in)
			if err != nil {
				return err
			}
			mopts := []llb.ConstraintsOpt{llb.Platform(p)}
			if opts.NoCache {
				mopts = append(mopts, llb.IgnoreCache)
			}
			def, err := st.Marshal(gctx, mopts...)
			if err != nil {
				return fmt.Errorf("marshalling graph: %w", err)
			}
			res, err := c.Solve(gctx, gateway.SolveRequest{Definition: def.ToPB(), CacheImports: imports})
			if err != nil {
				return err
			}
			ref, err := res.SingleRef()
			if err != nil {
				return err
			}
			cfg, err := Config(img, in, ConfigInput{BaseDigest: dgst, Version: b.opts.Version})
			if err != nil {
				return err
			}
			dt, err := json.Marshal(cfg)
			if err != nil {
				return fmt.Errorf("encoding image config: %w", err)
			}
			out[i] = built{ref: ref, config: dt, baseConf: baseConf}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

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

// secretStore serves the contents of pip_secret_mounts by their position
// (see secretID): from memory when the caller gave them, else from the
// source file when BuildKit asks.
type secretStore struct {
	data  map[string][]byte
	files map[string]string
}

func newSecretStore(img *spec.Image, given map[string][]byte, netrc []byte) secrets.SecretStore {
	s := &secretStore{data: map[string][]byte{}, files: map[string]string{}}
	if len(netrc) > 0 {
		s.data[NetrcSecretID] = netrc
	}
	for i, m := range img.Spec.PipSecretMounts {
		id := secretID(i)
		if dt, ok := given[m.Source]; ok {
			s.data[id] = dt
			continue
		}
		if i < len(img.Secrets) {
			// Where the spec's checks found it, symlinks resolved.
			s.files[id] = img.Secrets[i]
			continue
		}
		p := m.Source
		if !filepath.IsAbs(p) {
			p = filepath.Join(img.Dir, filepath.FromSlash(p))
		}
		s.files[id] = p
	}
	return s
}

// GetSecret implements secrets.SecretStore. Errors name the secret's
// position, never its contents.
func (s *secretStore) GetSecret(ctx context.Context, id string) ([]byte, error) {
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
