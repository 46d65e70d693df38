package cache

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// manifestTypes are the manifest media types a lookup accepts.
var manifestTypes = []types.MediaType{
	types.OCIManifestSchema1, types.DockerManifestSchema2,
	types.OCIImageIndex, types.DockerManifestList,
	types.DockerManifestSchema1, types.DockerManifestSchema1Signed,
}

// direct makes a lookup's first attempt as one anonymous manifest HEAD,
// without the /v2/ handshake that go-containerregistry starts every
// repository with. It is used only for registries the keychain holds no
// credentials for, where the handshake would end anonymous anyway.
//
// handled is false when the answer needs the full lookup in the same
// attempt: a 401 (the registry wants a token), a redirect, a 200 without a
// valid digest or manifest type, or a 404 from a server that does not say
// it is a registry. Otherwise the attempt is over: a descriptor, or an
// error the retry loop classifies like any other (404 absent, 429 and 5xx
// retried, honouring Retry-After, network errors and timeouts).
func (r *Remote) direct(ctx context.Context, ref name.Tag) (desc *v1.Descriptor, handled bool, err error) {
	reg := ref.Context().Registry
	auth, err := authn.Resolve(ctx, r.o.keychain, reg)
	if err != nil || auth != authn.Anonymous {
		return nil, false, nil
	}
	scheme := "https"
	if r.plainHTTP(reg.RegistryStr()) {
		scheme = "http"
	}
	url := fmt.Sprintf("%s://%s/v2/%s/manifests/%s", scheme, reg.RegistryStr(), ref.Context().RepositoryStr(), ref.TagStr())
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, url, nil)
	if err != nil {
		return nil, false, nil
	}
	accept := make([]string, len(manifestTypes))
	for i, mt := range manifestTypes {
		accept[i] = string(mt)
	}
	req.Header.Set("Accept", strings.Join(accept, ","))
	if r.o.userAgent != "" {
		req.Header.Set("User-Agent", r.o.userAgent)
	}
	client := &http.Client{
		Transport:     observeTransport{inner: r.o.transport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, true, err
	}
	resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		d, err := v1.NewHash(resp.Header.Get("Docker-Content-Digest"))
		mt := types.MediaType(resp.Header.Get("Content-Type"))
		if err != nil || !isManifestType(mt) {
			return nil, false, nil
		}
		return &v1.Descriptor{Digest: d, MediaType: mt, Size: resp.ContentLength}, true, nil
	case code == http.StatusNotFound:
		if !strings.HasPrefix(resp.Header.Get("Docker-Distribution-Api-Version"), "registry/2") {
			return nil, false, nil
		}
		return nil, true, &transport.Error{StatusCode: code, Request: req}
	case retryableStatus(code):
		return nil, true, &transport.Error{StatusCode: code, Request: req}
	}
	return nil, false, nil
}

func isManifestType(mt types.MediaType) bool {
	for _, m := range manifestTypes {
		if mt == m {
			return true
		}
	}
	return false
}
