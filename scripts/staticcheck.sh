#!/usr/bin/env bash
# Runs staticcheck at a pinned version, built once from the Go module proxy
# into the devenv cache (ISPEC_DEVENV_CACHE, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv) and reused.
# Usage: scripts/staticcheck.sh [PACKAGES...]   (default ./...)
set -euo pipefail
VERSION=v0.8.2
GO="${GO:-go}"
CACHE="${ISPEC_DEVENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv}"
BIN="$CACHE/staticcheck-$VERSION-$("$GO" env GOVERSION)"
if [ ! -x "$BIN/staticcheck" ]; then
	echo "staticcheck: building $VERSION (once)" >&2
	mkdir -p "$BIN"
	GOBIN="$BIN" GOFLAGS=-mod=mod "$GO" install "honnef.co/go/tools/cmd/staticcheck@$VERSION"
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
"$BIN/staticcheck" "${@:-./...}"
