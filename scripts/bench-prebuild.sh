#!/usr/bin/env bash
# Measures the CI pre-build targets on the dev environment's BuildKit and
# registry (run `scripts/devenv.sh up` first):
#  1. 20 absent specs that share an absent parent spec: `ispec build
#     --jobs 4` against `--jobs 1` (wall time; each run has its own fresh
#     parent and children, so both build everything), and the parent built
#     once (manifest pushes in the registry's log);
#  2. 200 present specs: the whole pre-build step (`ispec build --jobs 16
#     --json-out` over a quoted pattern) against one `ispec exists` of one
#     of them, both with an empty local index.
# Each child's step is `sleep 0.5` (standing for a step that waits on the
# network, as pip does) plus a file write, so that the figures measure
# ispec's scheduling, not the CPU of a 2-core machine.
# Usage: scripts/bench-prebuild.sh [RUNS]   (default 10, for part 2)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
RUNS="${1:-10}"
ENV_FILE="${ISPEC_DEVENV_DIR:-$REPO_ROOT/.devenv}/env"
[ -f "$ENV_FILE" ] || { echo "run scripts/devenv.sh up first" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV_FILE"
export BUILDKIT_HOST
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$REPO_ROOT"
go build -o "$WORK/ispec" ./cmd/ispec
ISPEC="$WORK/ispec"
export XDG_CONFIG_HOME="$WORK/config" DOCKER_CONFIG="$WORK/docker"
mkdir -p "$DOCKER_CONFIG"
RUN_ID="$(date +%s)-$$"

# family DIR NS: an absent parent and 20 children of it.
family() {
	local dir="$1" ns="$2"
	mkdir -p "$dir/children"
	printf 'name: parent\nregistry: %s\nbase_image: %s\ncommands: ["echo %s > /parent.txt"]\n' \
		"$ns" "$ISPEC_TEST_BASE_BUSYBOX" "$ns" >"$dir/parent.yaml"
	for i in $(seq 20); do
		printf 'name: child%d\nregistry: %s\nbase_image: {spec: ../parent.yaml}\ncommands: ["sleep 0.5; echo %s-%d > /child.txt"]\n' \
			"$i" "$ns" "$ns" "$i" >"$dir/children/c$i.yaml"
	done
}

# pushes NS NAME: manifest pushes of NS/NAME in the registry's log.
pushes() {
	grep -c "\"PUT /v2/${1#*/}/$2/manifests/[^ ]* HTTP/[0-9.]*\" 201 " "$ISPEC_TEST_REGISTRY_LOG" || true
}

# wall SECONDS-VAR CMD...: runs CMD, stores its wall time in ms.
wall() {
	local t0 t1
	t0=$(now_ns)
	"${@:2}"
	t1=$(now_ns)
	printf -v "$1" '%d' $(((t1 - t0) / 1000000))
}

echo "== 20 absent specs sharing an absent parent: --jobs 4 vs --jobs 1"
# Warm BuildKit's copy of the base once, for both sides alike.
family "$WORK/warm" "$ISPEC_TEST_REGISTRY/bench-prebuild-$RUN_ID-warm"
ISPEC_CACHE_DIR="$WORK/cache-warm" "$ISPEC" build --progress quiet "$WORK/warm/parent.yaml" >/dev/null
for jobs in 1 4; do
	ns="$ISPEC_TEST_REGISTRY/bench-prebuild-$RUN_ID-j$jobs"
	family "$WORK/j$jobs" "$ns"
	wall ms "$ISPEC" build --jobs "$jobs" --progress quiet --cache-dir "$WORK/cache-j$jobs" \
		--json-out "$WORK/j$jobs.json" "$WORK/j$jobs/children/*.yaml" >/dev/null
	printf -v "ms_$jobs" '%d' "$ms"
	built=$(grep -c '"outcome": "built"' "$WORK/j$jobs.json")
	printf '%-36s %7d ms  (%d built, parent pushed %s time(s))\n' "--jobs $jobs" "$ms" "$built" "$(pushes "$ns" parent)"
done
# shellcheck disable=SC2154
awk -v a="$ms_1" -v b="$ms_4" 'BEGIN {printf "ratio --jobs 4 / --jobs 1 = %.2f (target <= 0.70)\n\n", b/a}'

echo "== 200 present specs: whole pre-build step vs one ispec exists (empty local index)"
ns="$ISPEC_TEST_REGISTRY/bench-prebuild-$RUN_ID-present"
mkdir -p "$WORK/present/a" "$WORK/present/b"
for i in $(seq 200); do
	sub=a
	[ "$i" -gt 100 ] && sub=b
	printf 'name: present%d\nregistry: %s\nbase_image: %s\nenv: {N: "%d"}\n' "$i" "$ns" "$ISPEC_TEST_BASE_BUSYBOX" "$i" >"$WORK/present/$sub/p$i.yaml"
done
# Make them present: one build of all (not measured).
ISPEC_CACHE_DIR="$WORK/cache-make" "$ISPEC" build --jobs 8 --progress quiet "$WORK/present/**/*.yaml" >/dev/null
export ISPEC WORK
compare "ispec exists (1 spec)" "ispec build, 200 present specs" "$RUNS" \
	-- bash -c 'rm -rf "$WORK/cold"; "$ISPEC" exists --cache-dir "$WORK/cold" "$WORK/present/a/p1.yaml"' \
	-- bash -c 'rm -rf "$WORK/cold"; "$ISPEC" build --jobs 16 --progress quiet --cache-dir "$WORK/cold" --json-out "$WORK/present.json" "$WORK/present/**/*.yaml"'
grep -q '"found": 200' "$WORK/present.json" || { echo "the pre-build step did not find all 200" >&2; exit 1; }
echo "(target: ratio <= 6)"
echo
# For reference: the 200 registry lookups alone, in one `ispec exists` call
# (the same HEAD requests, 8 at a time), and the step with a warm local
# index (a CI cache that keeps ISPEC_CACHE_DIR between runs).
compare "ispec exists (1 spec)" "ispec exists, 200 specs in one call" "$RUNS" \
	-- bash -c 'rm -rf "$WORK/cold"; "$ISPEC" exists --cache-dir "$WORK/cold" "$WORK/present/a/p1.yaml"' \
	-- bash -c 'rm -rf "$WORK/cold"; "$ISPEC" exists --cache-dir "$WORK/cold" "$WORK"/present/*/*.yaml'
"$ISPEC" build --progress quiet --cache-dir "$WORK/warm-index" "$WORK/present/**/*.yaml" >/dev/null 2>&1
compare "ispec exists (1 spec)" "ispec build, 200 present, warm index" "$RUNS" \
	-- bash -c 'rm -rf "$WORK/cold"; "$ISPEC" exists --cache-dir "$WORK/cold" "$WORK/present/a/p1.yaml"' \
	-- "$ISPEC" build --jobs 16 --progress quiet --cache-dir "$WORK/warm-index" "$WORK/present/**/*.yaml"
