#!/usr/bin/env bash
# Measures the registry cache on the dev environment's registry (run
# `scripts/devenv.sh up` first), each build on a fresh BuildKit daemon
# (its own empty root, started and removed by this script):
#  1. a one-pip-change rebuild of an image another daemon built and
#     exported the cache of, against a cold build of the same variant
#     (--no-registry-cache); target ratio <= 0.7;
#  2. a cold build that exports the cache against the same cold build
#     without export; target ratio <= 1.15.
# Every run builds into a new repository, so no run finds another's cache.
# Usage: scripts/bench-cache.sh [RUNS]   (default 3)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
RUNS="${1:-3}"
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
SEED_HOST="$BUILDKIT_HOST" # the devenv's daemon: the "other" daemon that built the image first

WORK="$(mktemp -d)"
DAEMON_PID=""
cleanup() {
	stop_daemon
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$REPO_ROOT"
go build -o "$WORK/ispec" ./cmd/ispec
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

mkdir -p "$WORK/ctx/app"
printf 'print("hello")\n' >"$WORK/ctx/app/main.py"
write_spec() { # REPOSITORY PIP_A_VERSION
	cat >"$WORK/ctx/spec.yaml" <<SPEC
name: app
registry: $ISPEC_TEST_REGISTRY/$1
base_image: $ISPEC_TEST_BASE_PYTHON
apt_packages: [jq]
packages: [ispec-demo-a==$2, ispec-demo-b==2.0.0]
pip_index: $ISPEC_TEST_PYPI_INDEX
env: {GREETING: hello}
commands: ["echo ready > /ready.txt"]
copy: [app]
workdir: /srv
SPEC
}

# timed_fresh ARGS...: ispec build ARGS on a fresh daemon; prints ms.
timed_fresh() {
	start_daemon
	time_cmd env BUILDKIT_HOST="$BUILDKIT_HOST" "$ISPEC" build --force --progress quiet "$@" "$WORK/ctx/spec.yaml"
	stop_daemon
}

echo "== one pip package changed, on a fresh daemon: with the registry cache vs cold (median of $RUNS)"
: >"$WORK/warm" && : >"$WORK/cold"
for i in $(seq "$RUNS"); do
	repo="bench-cache/$RUN_ID-pip-$i"
	write_spec "$repo" 1.0.0
	BUILDKIT_HOST="$SEED_HOST" "$ISPEC" build --force --progress quiet "$WORK/ctx/spec.yaml" >/dev/null
	write_spec "$repo" 1.1.0
	timed_fresh >>"$WORK/warm"
	write_spec "$repo-cold" 1.1.0
	timed_fresh --no-registry-cache >>"$WORK/cold"
done
WARM=$(median <"$WORK/warm") COLD=$(median <"$WORK/cold")
awk -v w="$WARM" -v c="$COLD" 'BEGIN {printf "cold build (fresh daemon)          median %8.1f ms\nrebuild with the registry cache    median %8.1f ms\nratio %.2f (target <= 0.70)\n\n", c/1000, w/1000, w/c}'

echo "== cold build on a fresh daemon: exporting the cache vs not (median of $RUNS)"
: >"$WORK/exp" && : >"$WORK/noexp"
for i in $(seq "$RUNS"); do
	write_spec "bench-cache/$RUN_ID-noexp-$i" 1.0.0
	timed_fresh --no-registry-cache >>"$WORK/noexp"
	write_spec "bench-cache/$RUN_ID-exp-$i" 1.0.0
	timed_fresh >>"$WORK/exp"
done
EXP=$(median <"$WORK/exp") NOEXP=$(median <"$WORK/noexp")
awk -v e="$EXP" -v n="$NOEXP" 'BEGIN {printf "cold build without export          median %8.1f ms\ncold build exporting the cache     median %8.1f ms\nratio %.2f (target <= 1.15)\n", n/1000, e/1000, e/n}'
