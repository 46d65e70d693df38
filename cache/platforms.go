package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Resolved pins a reference to digests: what it names now and, for each
// platform asked for, the platform's own manifest.
type Resolved struct {
	// Ref is the reference resolved, fully qualified.
	Ref string
	// Digest is the digest of the index or manifest Ref names.
	Digest v1.Hash
	// MediaType is that index's or manifest's media type.
	MediaType types.MediaType
	// Platforms holds one entry per platform asked for, in the same order.
	Platforms []PlatformDigest
}

// PlatformDigest is the manifest of one platform.
type PlatformDigest struct {
	// Platform is the platform asked for.
	Platform v1.Platform
	// Digest is that platform's image manifest digest.
	Digest v1.Hash
}

// ResolvePlatforms resolves ref (a tag or digest) to the digest it names
// and, for each of platforms, the digest of that platform's image manifest.
// When ref names a single image manifest, its config's platform must match
// each platform asked for (a config that states no platform matches any).
//
// Errors are an *AbsentError when the registry says ref does not exist, a
// *PlatformError when a platform is missing, and an *UnknownError when the
// registry cannot be asked (classified and retried as for Lookup).
func (r *Remote) ResolvePlatforms(ctx context.Context, ref name.Reference, platforms []v1.Platform) (Resolved, error) {
	res := Resolved{Ref: ref.Name()}
	target, err := r.withScheme(ref)
	if err != nil {
		return res, fmt.Errorf("resolving %s: %w", ref.Name(), err)
	}
	var perr *PlatformError
	try := func(ctx context.Context, _ bool) error {
		perr = nil
		p, err := r.getPuller()
		if err != nil {
			return err
		}
		d, err := p.Get(ctx, target)
		if err != nil {
			return err
		}
		mt, err := manifestMediaType(d.Manifest, d.MediaType)
		if err != nil {
			return err
		}
		res.Digest, res.MediaType, res.Platforms = d.Digest, mt, nil
		if mt.IsIndex() {
			im, err := v1.ParseIndexManifest(bytes.NewReader(d.Manifest))
			if err != nil {
				return &malformedError{msg: fmt.Sprintf("parsing index: %v", err)}
			}
			var avail []v1.Platform
			for _, m := range im.Manifests {
				if m.Platform != nil && m.MediaType.IsImage() && m.Platform.OS != "unknown" {
					avail = append(avail, *m.Platform)
				}
			}
			for _, want := range platforms {
				found := false
				for _, m := range im.Manifests {
					if m.Platform != nil && m.MediaType.IsImage() && platformMatches(*m.Platform, want) {
						res.Platforms = append(res.Platforms, PlatformDigest{Platform: want, Digest: m.Digest})
						found = true
						break
					}
				}
				if !found {
					perr = &PlatformError{Ref: ref.Name(), Platform: want, Available: avail}
					return nil
				}
			}
			return nil
		}
		if len(platforms) == 0 {
			return nil
		}
		img, err := d.Image()
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		have := cf.Platform()
		for _, want := range platforms {
			if have != nil && have.OS != "" && !platformMatches(*have, want) {
				perr = &PlatformError{Ref: ref.Name(), Platform: want, Available: []v1.Platform{*have}}
				return nil
			}
			res.Platforms = append(res.Platforms, PlatformDigest{Platform: want, Digest: d.Digest})
		}
		return nil
	}
	if f := r.retry(ctx, ref.Name(), try); f != nil {
		if f.absent != nil {
			return Resolved{Ref: ref.Name()}, f.absent
		}
		return Resolved{Ref: ref.Name()}, f.unknown
	}
	if perr != nil {
		return Resolved{Ref: ref.Name()}, perr
	}
	return res, nil
}

// platformMatches reports whether have satisfies want, treating an omitted
// variant as the architecture's default (arm64: v8, arm: v7).
func platformMatches(have, want v1.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	if want.Variant != "" && normVariant(have) != normVariant(want) {
		return false
	}
	if want.OSVersion != "" && have.OSVersion != want.OSVersion {
		return false
	}
	return true
}

func normVariant(p v1.Platform) string {
	if p.Variant != "" {
		return p.Variant
	}
	switch p.Architecture {
	case "arm64":
		return "v8"
	case "arm":
		return "v7"
	}
	return ""
}

// IsAbsent reports whether err says the registry does not have the
// reference (an *AbsentError).
func IsAbsent(err error) bool {
	var ae *AbsentError
	return errors.As(err, &ae)
}
