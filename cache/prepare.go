package cache

import (
	"context"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Preparer is a Checker that can get ready for many lookups at once.
// LookupAll calls Prepare before looking several tags up.
type Preparer interface {
	// Prepare readies lookups of refs. It is an optimization: a failure
	// shows up in the lookups themselves, never here.
	Prepare(ctx context.Context, refs []name.Tag)
}

// handshakes are authentication handshakes made for many repositories of
// one registry at once, so that a batch of lookups costs one request each
// rather than a handshake and a request each.
type handshakes struct {
	mu    sync.Mutex
	byReg map[string]*handshake
}

type handshake struct {
	puller *remote.Puller
	repos  map[string]bool
	at     time.Time
}

// Prepare makes one handshake per registry whose scope covers every
// repository of refs on it.
func (r *Remote) Prepare(ctx context.Context, refs []name.Tag) {
	byReg := map[string][]name.Tag{}
	for _, ref := range refs {
		byReg[ref.Context().RegistryStr()] = append(byReg[ref.Context().RegistryStr()], ref)
	}
	var wg sync.WaitGroup
	for host, group := range byReg {
		if len(group) < 2 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if hs := r.handshake(ctx, host, group); hs != nil {
				r.hs.mu.Lock()
				if r.hs.byReg == nil {
					r.hs.byReg = map[string]*handshake{}
				}
				r.hs.byReg[host] = hs
				r.hs.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func (r *Remote) handshake(ctx context.Context, host string, refs []name.Tag) *handshake {
	var opts []name.Option
	if r.plainHTTP(host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return nil
	}
	auth, err := authn.Resolve(ctx, r.o.keychain, reg)
	if err != nil {
		return nil
	}
	hs := &handshake{repos: map[string]bool{}, at: time.Now()}
	var scopes []string
	for _, ref := range refs {
		repo := ref.Context().RepositoryStr()
		if !hs.repos[repo] {
			hs.repos[repo] = true
			scopes = append(scopes, ref.Context().Scope(transport.PullScope))
		}
	}
	hctx, cancel := context.WithTimeout(ctx, r.o.attemptTimeout)
	defer cancel()
	rt, err := transport.NewWithContext(hctx, reg, auth, observeTransport{inner: r.o.transport}, scopes)
	if err != nil {
		return nil
	}
	ropts := r.pullerOptions()
	ropts = append(ropts, remote.WithTransport(rt))
	p, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil
	}
	hs.puller = p
	return hs
}

// prepared returns the puller of a handshake covering ref, if any.
func (r *Remote) prepared(ref name.Reference) *remote.Puller {
	r.hs.mu.Lock()
	defer r.hs.mu.Unlock()
	hs := r.hs.byReg[ref.Context().RegistryStr()]
	if hs != nil && hs.repos[ref.Context().RepositoryStr()] && time.Since(hs.at) < pullerTTL {
		return hs.puller
	}
	return nil
}
