#!/usr/bin/env bash
# Measures the lock targets on the dev environment's BuildKit, registry and
# Python index (run `scripts/devenv.sh up` first). BuildKit's cache is not
# pruned (the daemon may be shared): the resolution never comes from it,
# and the builds run with --no-cache.
#  1. `ispec lock` of a spec with floating packages against the same
#     `pip install --dry-run --ignore-installed --report` run by
#     `buildctl build` of a Dockerfile on the same base (the venv cached,
#     the pip step never: --opt no-cache=resolve), its report written out
#     through a local output as ispec's is. Target: within 1.5x.
#  2. `ispec build --force --no-cache` of the spec with its lock (pip
#     install --no-deps --require-hashes of the pins) against the same
#     spec without one (pip resolves). Target: within 1.05x.
# Usage: scripts/bench-lock.sh [RUNS]   (default 5)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
RUNS="${1:-5}"
ENV_FILE="${ISPEC_DEVENV_DIR:-$REPO_ROOT/.devenv}/env"
[ -f "$ENV_FILE" ] || { echo "run scripts/devenv.sh up first" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV_FILE"
export BUILDKIT_HOST
BUILDCTL="${ISPEC_TEST_BUILDCTL:-}"
[ -x "$BUILDCTL" ] || BUILDCTL=$(command -v buildctl)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$REPO_ROOT"
go build -o "$WORK/ispec" ./cmd/ispec
ISPEC="$WORK/ispec"
export ISPEC_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config"
RUN_ID=$(date +%s)
PACKAGES='ispec-demo-c ispec-demo-b'

write_spec() { # DIR NAME
	mkdir -p "$1"
	cat >"$1/spec.yaml" <<SPEC
name: $2
registry: $ISPEC_TEST_REGISTRY/bench-lock-$RUN_ID
base_image: $ISPEC_TEST_BASE_PYTHON
pip_index: $ISPEC_TEST_PYPI_INDEX
packages: [${PACKAGES// /, }]
SPEC
}
write_spec "$WORK/floating" floating
write_spec "$WORK/locked" locked
"$ISPEC" lock "$WORK/locked/spec.yaml" >/dev/null

mkdir -p "$WORK/ctx"
cat >"$WORK/ctx/Dockerfile" <<DOCKERFILE
FROM $ISPEC_TEST_BASE_PYTHON AS venv
RUN python3 -m venv /opt/venv
FROM venv AS resolve
RUN --mount=type=cache,target=/root/.cache/pip \\
    /opt/venv/bin/python -m pip install --no-compile --index-url $ISPEC_TEST_PYPI_INDEX \\
    --dry-run --ignore-installed --quiet --report /report.json $PACKAGES
FROM scratch
COPY --from=resolve /report.json /
DOCKERFILE

ispec_lock() { "$ISPEC" lock "$WORK/floating/spec.yaml"; }
buildctl_resolve() {
	rm -rf "$WORK/out"
	"$BUILDCTL" --addr "$BUILDKIT_HOST" build --progress quiet --frontend dockerfile.v0 \
		--local context="$WORK/ctx" --local dockerfile="$WORK/ctx" --opt no-cache=resolve \
		--output "type=local,dest=$WORK/out"
	test -s "$WORK/out/report.json"
}
ispec_build() { "$ISPEC" build --force --no-cache --no-registry-cache --progress quiet "$WORK/$1/spec.yaml"; }
export -f ispec_lock buildctl_resolve ispec_build
export BUILDCTL ISPEC WORK BUILDKIT_HOST

# Every command once, checked: a failing one is no figure.
buildctl_resolve >/dev/null
ispec_lock >/dev/null
ispec_build floating >/dev/null
ispec_build locked >/dev/null

echo "== ispec lock vs pip install --dry-run --report through buildctl (same base, same index)"
compare "buildctl build (pip --dry-run --report)" "ispec lock" "$RUNS" -- bash -c buildctl_resolve -- bash -c ispec_lock

echo "== build from a lock vs the same build without one (--no-cache)"
compare "ispec build (floating)" "ispec build (locked)" "$RUNS" -- bash -c 'ispec_build floating' -- bash -c 'ispec_build locked'
