package cache

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestResolvePlatforms(t *testing.T) {
	tr := newTestRegistry(t)
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}
	arm64v8 := v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	s390x := v1.Platform{OS: "linux", Architecture: "s390x"}

	idx, digests := multiPlatform(t, amd64, arm64)
	idxDigest := tr.push(t, "base/multi:1", idx)
	single := platformImage(t, arm64)
	singleDigest := tr.push(t, "base/single:1", single)

	ref := func(s string) name.Reference {
		r, err := name.ParseReference(tr.host() + "/" + s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := newRemote(t)
	ctx := context.Background()

	t.Run("index", func(t *testing.T) {
		got, err := r.ResolvePlatforms(ctx, ref("base/multi:1"), []v1.Platform{arm64v8, amd64})
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != idxDigest || !got.MediaType.IsIndex() {
			t.Errorf("index = %v %v, want %v", got.Digest, got.MediaType, idxDigest)
		}
		if len(got.Platforms) != 2 || got.Platforms[0].Digest != digests[1] || got.Platforms[1].Digest != digests[0] {
			t.Errorf("platforms = %+v, want arm64 %v then amd64 %v", got.Platforms, digests[1], digests[0])
		}
		if got.Platforms[0].Platform.String() != arm64v8.String() {
			t.Errorf("platform echoed = %v, want the one asked for", got.Platforms[0].Platform)
		}
	})
	t.Run("by digest", func(t *testing.T) {
		got, err := r.ResolvePlatforms(ctx, ref("base/multi@"+idxDigest.String()), []v1.Platform{amd64})
		if err != nil || got.Digest != idxDigest || got.Platforms[0].Digest != digests[0] {
			t.Errorf("got %+v, %v", got, err)
		}
	})
	t.Run("index missing platform", func(t *testing.T) {
		_, err := r.ResolvePlatforms(ctx, ref("base/multi:1"), []v1.Platform{s390x})
		var pe *PlatformError
		if !errors.As(err, &pe) || pe.Platform.String() != s390x.String() || len(pe.Available) != 2 {
			t.Fatalf("err = %v, want *PlatformError for s390x with 2 available", err)
		}
	})
	t.Run("single manifest matching", func(t *testing.T) {
		got, err := r.ResolvePlatforms(ctx, ref("base/single:1"), []v1.Platform{arm64})
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != singleDigest || len(got.Platforms) != 1 || got.Platforms[0].Digest != singleDigest {
			t.Errorf("got %+v, want %v for arm64", got, singleDigest)
		}
	})
	t.Run("single manifest other platform", func(t *testing.T) {
		_, err := r.ResolvePlatforms(ctx, ref("base/single:1"), []v1.Platform{amd64})
		var pe *PlatformError
		if !errors.As(err, &pe) {
			t.Fatalf("err = %v, want *PlatformError", err)
		}
	})
	t.Run("absent", func(t *testing.T) {
		_, err := r.ResolvePlatforms(ctx, ref("base/multi:nope"), []v1.Platform{amd64})
		if !IsAbsent(err) {
			t.Fatalf("err = %v, want *AbsentError", err)
		}
	})
	t.Run("server error is unknown", func(t *testing.T) {
		tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
			registryError(w, r, 500, "UNKNOWN", "storage down")
			return true
		})
		defer tr.setFault(nil)
		_, err := r.ResolvePlatforms(ctx, ref("base/multi:1"), []v1.Platform{amd64})
		var ue *UnknownError
		if !errors.As(err, &ue) || ue.Reason != ReasonUnavailable || ue.Attempts != 3 {
			t.Fatalf("err = %v, want *UnknownError (unavailable) after 3 attempts", err)
		}
	})
	t.Run("503 then 200", func(t *testing.T) {
		tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n > 1 {
				return false
			}
			registryError(w, r, 503, "UNAVAILABLE", "busy")
			return true
		})
		defer tr.setFault(nil)
		got, err := r.ResolvePlatforms(ctx, ref("base/multi:1"), nil)
		if err != nil || got.Digest != idxDigest {
			t.Fatalf("got %v, %v, want %v", got.Digest, err, idxDigest)
		}
	})
}

func TestPlatformMatches(t *testing.T) {
	p := func(os, arch, variant string) v1.Platform {
		return v1.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	for _, tc := range []struct {
		have, want v1.Platform
		ok         bool
	}{
		{p("linux", "amd64", ""), p("linux", "amd64", ""), true},
		{p("linux", "arm64", "v8"), p("linux", "arm64", ""), true},
		{p("linux", "arm64", ""), p("linux", "arm64", "v8"), true},
		{p("linux", "arm", "v6"), p("linux", "arm", "v7"), false},
		{p("linux", "arm", ""), p("linux", "arm", "v7"), true},
		{p("windows", "amd64", ""), p("linux", "amd64", ""), false},
	} {
		if got := platformMatches(tc.have, tc.want); got != tc.ok {
			t.Errorf("platformMatches(%v, %v) = %v, want %v", tc.have, tc.want, got, tc.ok)
		}
	}
}
