#!/usr/bin/env bash
# Measures how fast the CLI starts, against crane:
#  1. package initialization: GODEBUG=inittrace=1 `ispec version` vs
#     `crane version`: how many packages initialize and the sum of their
#     init times (ms);
#  2. the packages each binary links (go version -m counts modules; the
#     package count is go list -deps);
#  3. a cold `ispec exists` (empty local index) vs `crane digest` of the
#     same image in the registry at ISPEC_BENCH_REGISTRY (default the
#     development environment's, 127.0.0.1:5000). The image is pushed there
#     first (crane append of an empty layer), so both answer "exists".
# Usage: scripts/bench-start.sh [RUNS]   (default 30)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
RUNS="${1:-30}"
REGISTRY="${ISPEC_BENCH_REGISTRY:-127.0.0.1:5000}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$REPO_ROOT"
go build -o "$WORK/ispec" ./cmd/ispec
build_crane "$WORK/crane"
ISPEC="$WORK/ispec" CRANE="$WORK/crane"

# inittrace: one line per package with an init; "@t ms clock, N bytes"
# where t is the time spent (columns: init PKG @start ms, TIME ms clock, ...).
inits() {
	GODEBUG=inittrace=1 "$@" 2>&1 >/dev/null | awk '
		/^init / {n++; ms += $5}
		END {printf "%3d packages initialized, %6.2f ms of init\n", n, ms}'
}
echo "== package initialization (median of $RUNS runs of the sum)"
for bin in "$ISPEC version" "$CRANE version"; do
	for _ in $(seq "$RUNS"); do
		# shellcheck disable=SC2086
		inits $bin
	done | sort -k5 -n | awk -v b="${bin##*/}" -v r="$RUNS" 'NR == int((r+1)/2) {print b ": " $0}'
done
echo "   packages linked: ispec $(go list -deps ./cmd/ispec | wc -l), crane $(cd "$(go list -m -f '{{.Dir}}' github.com/google/go-containerregistry)" && go list -deps ./cmd/crane | wc -l)"
echo

export ISPEC_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config" DOCKER_CONFIG="$WORK/docker"
mkdir -p "$WORK/specs" "$DOCKER_CONFIG"
tar cf "$WORK/empty.tar" -T /dev/null
printf 'name: bench-start\nregistry: %s/bench\napt_packages: [jq]\n' "$REGISTRY" >"$WORK/specs/s.yaml"
REF=$("$ISPEC" tag "$WORK/specs/s.yaml")
"$CRANE" append --insecure -f "$WORK/empty.tar" -t "$REF" >/dev/null 2>&1
"$ISPEC" exists --verify "$WORK/specs/s.yaml" >/dev/null || { echo "ispec exists does not find $REF" >&2; exit 1; }

echo "== cold lookup: ispec exists with an empty local index vs crane digest"
export CRANE ISPEC REF WORK
compare "crane digest" "ispec exists (empty index)" "$RUNS" \
	-- bash -c 'rm -rf "$WORK/cold"; "$CRANE" digest --insecure "$REF"' \
	-- bash -c 'rm -rf "$WORK/cold"; ISPEC_CACHE_DIR="$WORK/cold" "$ISPEC" exists "$WORK/specs/s.yaml"'
