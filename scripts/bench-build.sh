#!/usr/bin/env bash
# Measures the build targets on the dev environment's BuildKit and registry
# (run `scripts/devenv.sh up` first):
#  1. a cold `ispec build` against `buildctl build` of an equivalent
#     hand-written Dockerfile on the same daemon (BuildKit's cache pruned
#     before every run of either);
#  2. `ispec build` of an image that exists against `crane digest` of it;
#  3. the rebuilds after changing one pip package, and after changing only
#     the apt set, against the cold build;
#  4. the export of the same image built with the merged graph and with the
#     linear one (builder's TestE2EExportTime, steps cached, alternating);
#  5. the ispec process's peak memory while sending a large copied tree.
# Usage: scripts/bench-build.sh [COLD_RUNS] [BIG_MB]   (defaults 3, 512)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
COLD_RUNS="${1:-3}"
BIG_MB="${2:-512}"
ENV_FILE="${ISPEC_DEVENV_DIR:-$REPO_ROOT/.devenv}/env"
[ -f "$ENV_FILE" ] || { echo "run scripts/devenv.sh up first" >&2; exit 1; }
# shellcheck disable=SC1090
. "$ENV_FILE"
export BUILDKIT_HOST
BUILDCTL="${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv/buildkit-$(cd "$REPO_ROOT" && go list -m -f '{{.Version}}' github.com/moby/buildkit)/buildctl"
[ -x "$BUILDCTL" ] || BUILDCTL=$(command -v buildctl)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$REPO_ROOT"
go build -o "$WORK/ispec" ./cmd/ispec
build_crane "$WORK/crane"
ISPEC="$WORK/ispec" CRANE="$WORK/crane"
export ISPEC_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config"
RUN_ID=$(date +%s)

mkdir -p "$WORK/ctx/app"
printf 'print("hello")\n' >"$WORK/ctx/app/main.py"
printf '#!/bin/sh\necho run\n' >"$WORK/ctx/app/run.sh" && chmod 0755 "$WORK/ctx/app/run.sh"
write_spec() { # PIP_A_VERSION [APT_PACKAGES]
	cat >"$WORK/ctx/spec.yaml" <<SPEC
name: bench-build-$RUN_ID
registry: $ISPEC_TEST_REGISTRY/bench
base_image: $ISPEC_TEST_BASE_PYTHON
apt_packages: [${2:-jq}]
packages: [ispec-demo-a==$1, ispec-demo-b==2.0.0]
pip_index: $ISPEC_TEST_PYPI_INDEX
env: {GREETING: hello}
commands: ["echo ready > /ready.txt"]
copy: [app]
workdir: /srv
SPEC
}
write_spec 1.0.0
cat >"$WORK/ctx/Dockerfile" <<DOCKERFILE
FROM $ISPEC_TEST_BASE_PYTHON
ENV SOURCE_DATE_EPOCH=0
RUN --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\
    --mount=type=cache,target=/var/cache/apt,sharing=locked \\
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jq && \\
    rm -rf /var/log/apt /var/log/dpkg.log /var/cache/ldconfig/aux-cache
RUN python3 -m venv /opt/venv
RUN --mount=type=cache,target=/root/.cache/pip \\
    /opt/venv/bin/python -m pip install --no-compile --index-url $ISPEC_TEST_PYPI_INDEX ispec-demo-a==1.0.0 ispec-demo-b==2.0.0
ENV PATH=/opt/venv/bin:\$PATH PYTHONDONTWRITEBYTECODE=1 GREETING=hello
RUN echo ready > /ready.txt
COPY app /srv/app
WORKDIR /srv
DOCKERFILE

prune() { "$BUILDCTL" --addr "$BUILDKIT_HOST" prune --all >/dev/null; }
ispec_cold() { prune; "$ISPEC" build --force --progress quiet "$WORK/ctx/spec.yaml"; }
buildctl_cold() {
	prune
	"$BUILDCTL" --addr "$BUILDKIT_HOST" build --progress quiet --frontend dockerfile.v0 \
		--local context="$WORK/ctx" --local dockerfile="$WORK/ctx" \
		--opt build-arg:SOURCE_DATE_EPOCH=0 \
		--output "type=image,name=$ISPEC_TEST_REGISTRY/bench/buildctl-$RUN_ID:latest,push=true,rewrite-timestamp=true"
}
export -f prune ispec_cold buildctl_cold
export BUILDCTL ISPEC WORK RUN_ID ISPEC_TEST_REGISTRY

echo "== cold build: ispec vs buildctl + Dockerfile (cache pruned before each)"
compare "buildctl build (Dockerfile)" "ispec build (cold)" "$COLD_RUNS" -- bash -c buildctl_cold -- bash -c ispec_cold
COLD_MS=$(for _ in 1 2; do time_cmd bash -c ispec_cold; done | median)

echo "== the image exists: ispec build vs crane digest"
REF=$("$ISPEC" tag "$WORK/ctx/spec.yaml")
compare "crane digest" "ispec build (exists)" 20 -- "$CRANE" digest --insecure "$REF" -- "$ISPEC" build --progress quiet "$WORK/ctx/spec.yaml"

echo "== one pip package changed: rebuild vs cold build"
write_spec 1.1.0
CHANGED_MS=$(time_cmd "$ISPEC" build --progress quiet "$WORK/ctx/spec.yaml")
awk -v c="$COLD_MS" -v r="$CHANGED_MS" 'BEGIN {printf "cold ispec build median %.1f ms; rebuild after a pip change %.1f ms; ratio %.2f\n\n", c/1000, r/1000, r/c}'

echo "== only the apt set changed: rebuild vs cold build"
write_spec 1.1.0 "jq, tree"
APT_MS=$(time_cmd "$ISPEC" build --progress quiet "$WORK/ctx/spec.yaml")
awk -v c="$COLD_MS" -v r="$APT_MS" 'BEGIN {printf "cold ispec build median %.1f ms; rebuild after an apt change %.1f ms; ratio %.2f\n\n", c/1000, r/1000, r/c}'
write_spec 1.1.0

echo "== export of the merged graph vs the linear one (same image, steps cached)"
ISPEC_DEVENV_DIR="$(dirname "$ENV_FILE")" ISPEC_BENCH_EXPORT=5 go test ./builder -count 1 -run 'TestE2EExportTime$' -v | grep -E 'export median|FAIL|ok ' || true
echo

echo "== peak memory of ispec while sending $BIG_MB MB of copied files"
mkdir -p "$WORK/ctx/big"
for i in $(seq 0 $((BIG_MB / 16 - 1))); do head -c $((16 << 20)) /dev/urandom >"$WORK/ctx/big/blob$i"; done
sed -i 's/^copy: \[app\]/copy: [app, big]/' "$WORK/ctx/spec.yaml"
/usr/bin/time -f "ispec build with $BIG_MB MB copied: peak RSS %M KiB, wall %e s" "$ISPEC" build --progress quiet "$WORK/ctx/spec.yaml" >/dev/null
sed -i 's/^copy: \[app, big\]/copy: [app]/' "$WORK/ctx/spec.yaml"
/usr/bin/time -f "ispec build (exists, for scale): peak RSS %M KiB" "$ISPEC" build --progress quiet "$WORK/ctx/spec.yaml" >/dev/null
