#!/usr/bin/env bash
# Measures ordered layers on the dev environment's registry and index (run
# `scripts/devenv.sh up` first): a spec whose first layer installs a heavy
# package (a generated wheel of incompressible bytes, 300 MB by default,
# published to the dev index once) and whose second installs a light one.
# Each run, in a repository and cache family of its own:
#  1. a cold build on a fresh BuildKit daemon (its own empty root, started
#     and removed by this script), exporting the registry cache as every
#     push does;
#  2. the light package's version changed, rebuilt on the same daemon;
#  3. changed again, rebuilt on another fresh daemon with the registry
#     cache (a new CI runner or pool pod).
# Target: each rebuild takes at most 0.10 of the cold build.
# Two layouts are measured: both layers in one spec ("one spec"), and the
# heavy layer in a parent spec that the light one builds on
# (base_image: {spec: heavy.yaml}, "parent spec"), whose layers are base
# layers to the child's build.
# Usage: scripts/bench-layers.sh [RUNS]   (default 3)
#   ISPEC_BENCH_HEAVY_BYTES   size of the heavy payload (default 300000000)
#   ISPEC_BENCH_LOGS          keep each build's plain progress in this folder
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
RUNS="${1:-3}"
HEAVY_BYTES="${ISPEC_BENCH_HEAVY_BYTES:-300000000}"
STATE="${ISPEC_DEVENV_DIR:-$REPO_ROOT/.devenv}"
ENV_FILE="$STATE/env"
[ -f "$ENV_FILE" ] || { echo "run scripts/devenv.sh up first" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV_FILE"
BK_VERSION=$(cd "$REPO_ROOT" && go list -m -f '{{.Version}}' github.com/moby/buildkit)
BK_DIR="${ISPEC_DEVENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv}/buildkit-$BK_VERSION"
BUILDKITD="${ISPEC_TEST_BUILDKITD_BIN:-$BK_DIR/buildkitd}"
BUILDKITD_CONFIG="${ISPEC_TEST_BUILDKITD_CONFIG:-$STATE/buildkit/buildkitd.toml}"
BUILDCTL="$(dirname "$BUILDKITD")/buildctl"
[ -x "$BUILDKITD" ] && [ -x "$BUILDCTL" ] || { echo "no buildkitd at $BUILDKITD: run scripts/devenv.sh up" >&2; exit 1; }
LOGS="${ISPEC_BENCH_LOGS:-}"
[ -z "$LOGS" ] || mkdir -p "$LOGS"

WORK="$(mktemp -d)"
DAEMON_PID=""
cleanup() {
	stop_daemon
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$REPO_ROOT"
go build -o "$WORK/ispec" ./cmd/ispec
go build -o "$WORK/fixtures" ./internal/cmd/fixtures
ISPEC="$WORK/ispec"
export ISPEC_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config"
RUN_ID=$(date +%s)

# start_daemon: a buildkitd with an empty root; sets BUILDKIT_HOST.
start_daemon() {
	local d="$WORK/bk"
	rm -rf "$d" && mkdir -p "$d"
	{ cat "$BUILDKITD_CONFIG"; printf '\n[otel]\n  socketPath = "%s"\n' "$d/otel.sock"; } >"$d/buildkitd.toml"
	setsid "$BUILDKITD" --config "$d/buildkitd.toml" --root "$d/root" --addr "unix://$d/bk.sock" </dev/null >"$d/log" 2>&1 &
	DAEMON_PID=$!
	BUILDKIT_HOST="unix://$d/bk.sock"
	for _ in $(seq 300); do
		"$BUILDCTL" --addr "$BUILDKIT_HOST" debug workers >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	tail -n 20 "$d/log" >&2
	echo "buildkitd did not start" >&2
	exit 1
}

stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=""
	rm -rf "$WORK/bk"
}

HEAVY=ispec-bench-heavy
HEAVY_VERSION="1.0.$HEAVY_BYTES"
LIGHT=ispec-bench-light
echo "publishing $HEAVY==$HEAVY_VERSION ($HEAVY_BYTES bytes that do not compress) to $ISPEC_TEST_PYPI_INDEX" >&2
"$WORK/fixtures" wheel -dir "$ISPEC_TEST_PYPI_WHEELS" -name "$HEAVY" -version "$HEAVY_VERSION" \
	-payload "$HEAVY_BYTES" -parts 10 >/dev/null

mkdir -p "$WORK/ctx"
# write_spec LAYOUT REPOSITORY LIGHT_VERSION
write_spec() {
	case "$1" in
	one)
		cat >"$WORK/ctx/spec.yaml" <<SPEC
name: app
registry: $ISPEC_TEST_REGISTRY/$2
base_image: $ISPEC_TEST_BASE_PYTHON
pip_index: $ISPEC_TEST_PYPI_INDEX
layers:
  - packages: [$HEAVY==$HEAVY_VERSION]
  - packages: [$LIGHT==$3]
  - env: {MODE: bench}
SPEC
		;;
	parent)
		cat >"$WORK/ctx/heavy.yaml" <<SPEC
name: heavy
registry: $ISPEC_TEST_REGISTRY/$2
base_image: $ISPEC_TEST_BASE_PYTHON
pip_index: $ISPEC_TEST_PYPI_INDEX
layers:
  - packages: [$HEAVY==$HEAVY_VERSION]
SPEC
		cat >"$WORK/ctx/spec.yaml" <<SPEC
name: app
registry: $ISPEC_TEST_REGISTRY/$2
base_image: {spec: heavy.yaml}
pip_index: $ISPEC_TEST_PYPI_INDEX
layers:
  - packages: [$LIGHT==$3]
  - env: {MODE: bench}
SPEC
		;;
	esac
}

# timed_build LOG: ispec build of the spec on BUILDKIT_HOST; prints ms and
# keeps the plain progress as LOG under ISPEC_BENCH_LOGS when set.
timed_build() {
	local log=/dev/null t0 t1
	[ -z "$LOGS" ] || log="$LOGS/$1.log"
	t0=$(now_ns)
	if ! BUILDKIT_HOST="$BUILDKIT_HOST" "$ISPEC" build --force --progress plain "$WORK/ctx/spec.yaml" >/dev/null 2>"$WORK/progress"; then
		tail -n 30 "$WORK/progress" >&2
		echo "build failed" >&2
		exit 1
	fi
	t1=$(now_ns)
	cp "$WORK/progress" "$log" 2>/dev/null || true
	echo $(((t1 - t0) / 1000))
}

# measure LAYOUT: RUNS rounds of cold build, rebuild on the same daemon,
# rebuild on a fresh daemon; prints the medians and ratios.
measure() {
	local layout="$1" i repo cold same fresh
	: >"$WORK/cold" && : >"$WORK/same" && : >"$WORK/fresh"
	for i in $(seq "$RUNS"); do
		# A registry path of its own: neither the repository's cache nor
		# the family's is shared with another run.
		repo="bench-layers-$RUN_ID-$layout-$i/app"
		for v in 0 1 2; do
			"$WORK/fixtures" wheel -dir "$ISPEC_TEST_PYPI_WHEELS" -name "$LIGHT" -version "1.$RUN_ID.$i.$v" >/dev/null
		done
		start_daemon
		write_spec "$layout" "$repo" "1.$RUN_ID.$i.0"
		cold=$(timed_build "$layout-$i-cold")
		write_spec "$layout" "$repo" "1.$RUN_ID.$i.1"
		same=$(timed_build "$layout-$i-same-daemon")
		stop_daemon
		start_daemon
		write_spec "$layout" "$repo" "1.$RUN_ID.$i.2"
		fresh=$(timed_build "$layout-$i-fresh-daemon")
		stop_daemon
		echo "$cold" >>"$WORK/cold" && echo "$same" >>"$WORK/same" && echo "$fresh" >>"$WORK/fresh"
		awk -v c="$cold" -v s="$same" -v f="$fresh" -v i="$i" -v l="$layout" \
			'BEGIN {printf "%s spec, run %d: cold %.1f s, same daemon %.1f s (%.3f), fresh daemon %.1f s (%.3f)\n", l, i, c/1e6, s/1e6, s/c, f/1e6, f/c}' >&2
	done
	local c s f
	c=$(median <"$WORK/cold") s=$(median <"$WORK/same") f=$(median <"$WORK/fresh")
	awk -v c="$c" -v s="$s" -v f="$f" -v n="$RUNS" -v l="$layout" 'BEGIN {
		printf "== %s spec (median of %d)\n", l, n
		printf "cold build (fresh daemon, exports the cache)      %8.1f ms\n", c/1000
		printf "light change, same daemon                         %8.1f ms  ratio %.3f (target <= 0.10)\n", s/1000, s/c
		printf "light change, fresh daemon with the registry cache %8.1f ms  ratio %.3f (target <= 0.10)\n\n", f/1000, f/c
	}'
}

echo "heavy layer ($HEAVY_BYTES bytes) then light layer; the light package changed"
measure one
measure parent
