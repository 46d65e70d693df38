#!/usr/bin/env bash
# Measures the lookup targets against a real distribution registry on
# loopback (Debian's docker-registry, started here on a free port):
#  1. `ispec exists` with a cold local index vs `crane digest` of the same ref;
#  2. `ispec exists` answered from the local index vs `ispec tag`;
#  3. 50 specs in one `ispec exists` call vs one spec.
# The cold lookup starts from an empty local index each time (so it also
# records the answer); the 50-spec comparison uses --verify, which asks the
# registry every time.
# Usage: scripts/bench-lookup.sh [RUNS]   (default 30)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
RUNS="${1:-30}"
command -v docker-registry >/dev/null || { echo "needs docker-registry (apt-get install -y docker-registry)" >&2; exit 1; }
WORK="$(mktemp -d)"
cleanup() { [ -n "${REG_PID:-}" ] && kill "$REG_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cd "$REPO_ROOT"
go build -o "$WORK/ispec" ./cmd/ispec
build_crane "$WORK/crane"
ISPEC="$WORK/ispec" CRANE="$WORK/crane"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 5099)
cat >"$WORK/registry.yml" <<CFG
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $WORK/storage}}
http: {addr: 127.0.0.1:$PORT}
CFG
docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done

export ISPEC_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config" DOCKER_CONFIG="$WORK/docker"
mkdir -p "$WORK/specs" "$DOCKER_CONFIG"
tar cf "$WORK/empty.tar" -T /dev/null
for i in $(seq 50); do
	printf 'name: bench-%d\nregistry: 127.0.0.1:%s/bench\napt_packages: [jq]\n' "$i" "$PORT" >"$WORK/specs/s$i.yaml"
	"$CRANE" append --insecure -f "$WORK/empty.tar" -t "$("$ISPEC" tag "$WORK/specs/s$i.yaml")" >/dev/null 2>&1
done
REF=$("$ISPEC" tag "$WORK/specs/s1.yaml")

echo "== cold lookup: ispec exists with an empty local index vs crane digest"
# Both sides run under the same shell that empties the index first.
export CRANE ISPEC REF WORK
compare "crane digest" "ispec exists (empty index)" "$RUNS" \
	-- bash -c 'rm -rf "$WORK/cold"; "$CRANE" digest --insecure "$REF"' \
	-- bash -c 'rm -rf "$WORK/cold"; ISPEC_CACHE_DIR="$WORK/cold" "$ISPEC" exists "$WORK/specs/s1.yaml"'
echo "== the same with --verify (index known, registry asked, nothing written)"
compare "crane digest" "ispec exists --verify" "$RUNS" -- "$CRANE" digest --insecure "$REF" -- "$ISPEC" exists --verify "$WORK/specs/s1.yaml"
echo "== indexed lookup: ispec exists vs ispec tag"
"$ISPEC" exists "$WORK/specs/s1.yaml" >/dev/null
kill "$REG_PID"; REG_PID="" # no network at all: the registry is gone
compare "ispec tag" "ispec exists (in the local index)" "$RUNS" -- "$ISPEC" tag "$WORK/specs/s1.yaml" -- "$ISPEC" exists "$WORK/specs/s1.yaml"
docker-registry serve "$WORK/registry.yml" >>"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
echo "== 50 specs in one call vs one (both cold)"
compare "ispec exists --verify (1 spec)" "ispec exists --verify (50 specs)" "$RUNS" -- "$ISPEC" exists --verify "$WORK/specs/s1.yaml" -- "$ISPEC" exists --verify "$WORK"/specs/s*.yaml
