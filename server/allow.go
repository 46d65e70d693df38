package server

import (
	"errors"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ispec-dev/ispec/spec"
)

// registryList is an allowlist of registries: host[:port] entries, or
// host[:port]/path prefixes of repositories, lowercase. Docker Hub is
// spelled docker.io.
type registryList []string

// parseRegistries checks and normalizes allowlist entries.
func parseRegistries(regs []string) (registryList, error) {
	var out registryList
	for _, r := range regs {
		r = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r)), "/")
		if r == "" || strings.Contains(r, "://") {
			return nil, errors.New("allowed registry " + r + ": expected host[:port][/path]")
		}
		out = append(out, hubName(r))
	}
	return out, nil
}

// hubName spells Docker Hub's registry docker.io, as spec.NormalizeRef
// does, whichever name a reference or an entry gives it.
func hubName(repo string) string {
	host, rest, _ := strings.Cut(repo, "/")
	if host == name.DefaultRegistry || host == "registry-1.docker.io" {
		host = "docker.io"
	}
	if rest == "" {
		return host
	}
	return host + "/" + rest
}

// allows reports whether repo (host[:port]/path) is on the list: its
// registry, or one of its path prefixes.
func (l registryList) allows(repo string) bool {
	repo = hubName(strings.ToLower(repo))
	for _, a := range l {
		if repo == a || strings.HasPrefix(repo, a+"/") {
			return true
		}
	}
	return false
}

// readable returns the registries the server may read from (look up,
// pull base images): the lookup allowlist and the push allowlist; nil,
// any, when no lookup allowlist is set.
func (s *Server) readable() registryList {
	if len(s.lookups) == 0 {
		return nil
	}
	return append(append(registryList{}, s.lookups...), s.allowed...)
}

// repoOf is a reference's repository as host[:port]/path.
func repoOf(r name.Repository) string {
	return r.RegistryStr() + "/" + r.RepositoryStr()
}

// allowLookup checks that the server may look ref up; the error, from
// the item named item, is PERMISSION_DENIED.
func (s *Server) allowLookup(item string, ref name.Tag) error {
	l := s.readable()
	if l == nil || l.allows(repoOf(ref.Context())) {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%s: this server does not look up images in %s (allowed: %s)", item, ref.Context().RegistryStr(), strings.Join(l, ", "))
}

// allowReads checks that building img reads only from registries the
// server may read from: where img and its base specs' images are looked
// up, and where base images are pulled from.
func (s *Server) allowReads(img *spec.Image) error {
	l := s.readable()
	if l == nil {
		return nil
	}
	for i := img; i != nil; i = i.Parent {
		if id := i.Identity; id.Registry != "" && !l.allows(id.Registry+"/"+id.Repository) {
			return status.Errorf(codes.PermissionDenied, "%s: this server does not look up images in %s (allowed: %s)", i.File, id.Registry, strings.Join(l, ", "))
		}
		if i.Base == "" {
			continue
		}
		ref, err := name.ParseReference(i.Base)
		if err != nil || !l.allows(repoOf(ref.Context())) {
			return status.Errorf(codes.PermissionDenied, "%s: this server does not pull base images from %s (base image %s; allowed: %s)",
				i.File, registryOf(i.Base), i.Base, strings.Join(l, ", "))
		}
	}
	return nil
}

// registryOf is the registry part of a normalized reference.
func registryOf(ref string) string {
	host, _, _ := strings.Cut(ref, "/")
	return host
}
