package builder

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ispec-dev/ispec/spec"
)

// needsAccounts reports whether the image's user depends on the base
// image's files (see planUser): not for an image that runs as root or as
// the base's own user.
func needsAccounts(s *spec.Spec, baseConfig []byte) (bool, error) {
	base, err := parseConfig(baseConfig)
	if err != nil {
		return false, err
	}
	return planUser(s, base.Config.User, Accounts{}).own, nil
}

// readAccounts reads the base image's /etc/passwd and /etc/group and which
// of AccountPaths it has, from the base as BuildKit pulls it for the
// build (from: base resolved to a digest).
func readAccounts(ctx context.Context, c gateway.Client, base, from string, p ocispecs.Platform) (Accounts, error) {
	def, err := llb.Image(from, llb.Platform(p), llb.WithCustomName("[ispec] base "+base)).Marshal(ctx, llb.Platform(p))
	if err != nil {
		return Accounts{}, fmt.Errorf("reading the base image's users: %w", err)
	}
	res, err := c.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
	if err != nil {
		return Accounts{}, fmt.Errorf("reading the base image's users: %w", err)
	}
	ref, err := res.SingleRef()
	if err != nil {
		return Accounts{}, fmt.Errorf("reading the base image's users: %w", err)
	}
	exists := func(path string) (bool, error) {
		if _, err := ref.StatFile(ctx, gateway.StatRequest{Path: path}); err != nil {
			if isNotExist(err) {
				return false, nil
			}
			return false, fmt.Errorf("reading the base image's %s: %w", path, err)
		}
		return true, nil
	}
	read := func(path string) ([]byte, error) {
		if ok, err := exists(path); !ok || err != nil {
			return nil, err
		}
		dt, err := ref.ReadFile(ctx, gateway.ReadRequest{Filename: path})
		if err != nil {
			return nil, fmt.Errorf("reading the base image's %s: %w", path, err)
		}
		return dt, nil
	}
	passwd, err := read("/etc/passwd")
	if err != nil {
		return Accounts{}, err
	}
	group, err := read("/etc/group")
	if err != nil {
		return Accounts{}, err
	}
	var present []string
	for _, path := range AccountPaths() {
		ok, err := exists(path)
		if err != nil {
			return Accounts{}, err
		}
		if ok {
			present = append(present, path)
		}
	}
	return KnownAccounts(passwd, group, present...), nil
}

// isNotExist reports whether BuildKit's error says a file does not exist;
// its errors cross gRPC as text.
func isNotExist(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "no such file or directory") || strings.Contains(msg, "not exist")
}
