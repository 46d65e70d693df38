#!/usr/bin/env bash
# Builds ispec's release archives: a static binary per platform, each in
# ispec_VERSION_OS_ARCH.tar.gz (the binary `ispec`, README.md, LICENSE when
# there is one), and ispec_VERSION_checksums.txt (sha256sum's format) over
# the archives. deploy/ci/install.sh downloads and verifies exactly these.
#
# Usage: scripts/release.sh VERSION [OUTDIR]   (OUTDIR default dist/)
# Env:   ISPEC_RELEASE_PLATFORMS (default "linux/amd64 linux/arm64"), GO.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${1:?usage: scripts/release.sh VERSION [OUTDIR], e.g. v0.6.0}"
case "$VERSION" in
v[0-9]*) ;;
*) echo "release: VERSION $VERSION: expected vMAJOR.MINOR.PATCH" >&2; exit 2 ;;
esac
OUT="${2:-$REPO_ROOT/dist}"
GO="${GO:-go}"
PLATFORMS="${ISPEC_RELEASE_PLATFORMS:-linux/amd64 linux/arm64}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

archives=()
for p in $PLATFORMS; do
	os="${p%/*}" arch="${p#*/}"
	name="ispec_${VERSION}_${os}_${arch}"
	mkdir -p "$WORK/$name"
	# Static, reproducible: no cgo, no paths or VCS stamps of this machine.
	(cd "$REPO_ROOT" && CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" "$GO" build -trimpath -buildvcs=false \
		-ldflags "-s -w -X main.version=$VERSION" -o "$WORK/$name/ispec" ./cmd/ispec)
	cp "$REPO_ROOT/README.md" "$WORK/$name/"
	[ -f "$REPO_ROOT/LICENSE" ] && cp "$REPO_ROOT/LICENSE" "$WORK/$name/"
	# Fixed owner, order and times, so that one commit gives one archive.
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		-C "$WORK/$name" -cf - . | gzip -n >"$OUT/$name.tar.gz"
	archives+=("$name.tar.gz")
	echo "release: $OUT/$name.tar.gz" >&2
done
(cd "$OUT" && sha256sum "${archives[@]}" >"ispec_${VERSION}_checksums.txt")
echo "release: $OUT/ispec_${VERSION}_checksums.txt" >&2
