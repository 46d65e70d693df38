#!/usr/bin/env bash
# Measures `ispec serve` on the dev environment's BuildKit and registry (run
# `scripts/devenv.sh up` first):
#  1. `ispec build --server` of an image that exists against `crane digest`
#     of it (target: within 1.5x), and the file bytes the calls uploaded
#     (target: none);
#  2. Lookup throughput of a known tag through the service with ghz
#     (target: 5,000 requests/s or more with p99 under 10 ms);
#  3. a BIG_TREE_MB (default 1024) source tree built through the server,
#     then rebuilt after one file changed (target: that file's bytes are
#     the only ones uploaded);
#  4. the server's peak resident memory over the run.
# hyperfine is used for 1 when installed (apt-get install hyperfine), else
# the alternating loop of scripts/lib/timing.sh.
# Usage: scripts/bench-service.sh [RUNS] [DURATION] [CONCURRENCY]
#        (defaults 30, 10s, 16)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
RUNS="${1:-30}"
DURATION="${2:-10s}"
CONCURRENCY="${3:-16}"
GHZ_VERSION="v0.93.0"
CACHE="${ISPEC_DEVENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv}"
ENV_FILE="${ISPEC_DEVENV_DIR:-$REPO_ROOT/.devenv}/env"
[ -f "$ENV_FILE" ] || { echo "run scripts/devenv.sh up first" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV_FILE"
export BUILDKIT_HOST

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT
cd "$REPO_ROOT"
go build -o "$WORK/ispec" ./cmd/ispec
build_crane "$WORK/crane"
GHZ="$CACHE/ghz-$GHZ_VERSION"
if [ ! -x "$GHZ" ]; then
	mkdir -p "$CACHE"
	GOBIN="$WORK/gobin" GOFLAGS= go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
	mv "$WORK/gobin/ghz" "$GHZ"
fi
ISPEC="$WORK/ispec" CRANE="$WORK/crane"
export ISPEC_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config" DOCKER_CONFIG="$WORK/docker"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ADDR="127.0.0.1:$(free_port)"
METRICS="127.0.0.1:$(free_port)"
TOKEN="bench-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$TOKEN" >"$WORK/tokens"
chmod 600 "$WORK/tokens"
ISPEC_CACHE_DIR="$WORK/server-cache" "$ISPEC" serve --listen "$ADDR" --metrics-listen "$METRICS" \
	--token-file "$WORK/tokens" --log-format json 2>"$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 100); do
	grep -q '"msg":"serving"' "$WORK/serve.log" 2>/dev/null && break
	kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
	sleep 0.1
done
grep -q '"msg":"serving"' "$WORK/serve.log" || { echo "ispec serve did not start" >&2; cat "$WORK/serve.log" >&2; exit 1; }
export ISPEC_SERVER="$ADDR" ISPEC_TOKEN="$TOKEN"

# A spec with copied files, built once through the server.
mkdir -p "$WORK/ctx/app/sub"
printf 'print("hello")\n' >"$WORK/ctx/app/main.py"
head -c $((1 << 20)) /dev/urandom >"$WORK/ctx/app/sub/blob.bin"
cat >"$WORK/ctx/spec.yaml" <<SPEC
name: bench-service-$(date +%s%N)
registry: $ISPEC_TEST_REGISTRY/bench
base_image: $ISPEC_TEST_BASE_BUSYBOX
copy: [app]
SPEC
"$ISPEC" build --progress quiet "$WORK/ctx/spec.yaml" >"$WORK/built"
REF=$(cut -d@ -f1 <"$WORK/built")
echo "built through the server: $(cat "$WORK/built")"
echo

uploaded() { curl -fsS "http://$METRICS/metrics" | awk '$1 == "ispec_upload_bytes_total" {printf "%d\n", $2}'; }

echo "== the image exists: ispec build --server vs crane digest"
BEFORE=$(uploaded)
if command -v hyperfine >/dev/null; then
	hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$WORK/hf.json" \
		"$CRANE digest --insecure $REF" \
		"$ISPEC build --server $ADDR --progress quiet $WORK/ctx/spec.yaml"
	python3 - "$WORK/hf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
a, b = r[0]["median"], r[1]["median"]
print(f"medians: crane digest {a*1000:.1f} ms, ispec build --server {b*1000:.1f} ms; ratio {b/a:.2f} (target <= 1.5)")
PY
	CALLS=$((RUNS + 3))
else
	compare "crane digest" "ispec build --server (exists)" "$RUNS" -- "$CRANE" digest --insecure "$REF" -- "$ISPEC" build --server "$ADDR" --progress quiet "$WORK/ctx/spec.yaml"
	CALLS=$((RUNS + 1))
fi
AFTER=$(uploaded)
awk -v d="$((AFTER - BEFORE))" -v n="$CALLS" \
	'BEGIN {printf "uploaded %d file bytes in %d calls: %.0f per call (target 0)\n\n", d, n, d/n}'

echo "== Lookup of a known tag through the service (ghz, $CONCURRENCY concurrent, $DURATION)"
"$GHZ" --insecure --call ispec.v1.ImageService/Lookup \
	--metadata "{\"authorization\":\"Bearer $TOKEN\"}" --reflect-metadata "{\"authorization\":\"Bearer $TOKEN\"}" \
	-d "{\"items\":[{\"ref\":\"$REF\"}]}" -c "$CONCURRENCY" --connections 2 -z "$DURATION" \
	--format json -o "$WORK/ghz.json" "$ADDR"
python3 - "$WORK/ghz.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = {d["percentage"]: d["latency"] / 1e6 for d in r.get("latencyDistribution") or []}
errs = sum(r.get("errorDistribution", {}).values()) if r.get("errorDistribution") else 0
ok = r["rps"] >= 5000 and lat.get(99, 1e9) < 10
print(f"{r['count']} requests, {errs} errors: {r['rps']:.0f} req/s, p50 {lat.get(50, 0):.2f} ms, "
      f"p99 {lat.get(99, 0):.2f} ms (target >= 5000 req/s, p99 < 10 ms: {'met' if ok else 'NOT met'})")
PY
echo

echo "== 50 callers of one new spec against one caller of another (same work)"
joined_spec() {
	mkdir -p "$WORK/$1"
	cat >"$WORK/$1/spec.yaml" <<SPEC
name: bench-join-$1-$(date +%s%N)
registry: $ISPEC_TEST_REGISTRY/bench
base_image: $ISPEC_TEST_BASE_BUSYBOX
commands: ["sleep 3; echo $1 $(date +%s%N) > /which.txt"]
SPEC
	echo "$WORK/$1/spec.yaml"
}
ONE=$(joined_spec one)
FIFTY=$(joined_spec fifty)
t0=$(date +%s%N)
"$ISPEC" build --progress quiet "$ONE" >/dev/null
t1=$(date +%s%N)
pids=()
for i in $(seq 50); do
	"$ISPEC" build --progress quiet --json "$FIFTY" >"$WORK/fifty.$i.json" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
t2=$(date +%s%N)
cat "$WORK"/fifty.*.json | python3 -c '
import json, sys
rs = [json.loads(l) for l in sys.stdin if l.strip()]
out = {}
for r in rs:
    out[r["outcome"]] = out.get(r["outcome"], 0) + 1
print("outcomes:", out, "digests:", len({r["digest"] for r in rs}))'
awk -v a="$((t1 - t0))" -v b="$((t2 - t1))" 'BEGIN {printf "one caller %.2f s, 50 joined callers %.2f s: ratio %.2f (target <= 1.1)\n\n", a/1e9, b/1e9, b/a}'

BIG_TREE_MB="${BIG_TREE_MB:-1024}"
echo "== a ${BIG_TREE_MB} MB source tree through the server, then one file changed"
mkdir -p "$WORK/big/src"
for i in $(seq 0 $((BIG_TREE_MB / 64 - 1))); do
	head -c $((64 << 20)) /dev/urandom >"$WORK/big/src/part-$i.bin"
done
cat >"$WORK/big/spec.yaml" <<SPEC
name: bench-big-$(date +%s%N)
registry: $ISPEC_TEST_REGISTRY/bench
base_image: $ISPEC_TEST_BASE_BUSYBOX
source_root: src
SPEC
BEFORE=$(uploaded)
t0=$(date +%s%N)
"$ISPEC" build --progress quiet "$WORK/big/spec.yaml" >/dev/null
t1=$(date +%s%N)
FIRST=$(($(uploaded) - BEFORE))
head -c $((1 << 20)) /dev/urandom >"$WORK/big/src/part-0.bin"
BEFORE=$(uploaded)
"$ISPEC" build --progress quiet "$WORK/big/spec.yaml" >/dev/null
t2=$(date +%s%N)
AGAIN=$(($(uploaded) - BEFORE))
awk -v f="$FIRST" -v a="$AGAIN" -v t1="$((t1 - t0))" -v t2="$((t2 - t1))" \
	'BEGIN {printf "first build %.1f s, %d bytes uploaded; after one file changed %.1f s, %d bytes uploaded (target %d)\n\n", t1/1e9, f, t2/1e9, a, 1048576}'

echo "== server memory"
awk '/^VmHWM|^VmRSS/ {printf "%s %d MiB\n", $1, $2/1024}' "/proc/$SERVER_PID/status"
