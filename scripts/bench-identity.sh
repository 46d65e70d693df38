#!/usr/bin/env bash
# Measures the identity targets:
#  1. `ispec tag` on a typical spec (10 apt, 30 pip packages, a requirements
#     file) against `ispec version` (process start is the floor);
#  2. hashing a source tree of 20,000 files / 200 MB against sha256sum over
#     the same files, and ispec's peak memory while doing it.
# Usage: scripts/bench-identity.sh [RUNS]   (default 30)
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/timing.sh
. "$REPO_ROOT/scripts/lib/timing.sh"
RUNS="${1:-30}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

go build -o "$WORK/ispec" "$REPO_ROOT/cmd/ispec"
ISPEC="$WORK/ispec"
export ISPEC_CACHE_DIR="$WORK/cache" XDG_CONFIG_HOME="$WORK/config"

pkgs=""
for i in $(seq -w 0 29); do pkgs="$pkgs, package-$i==1.$i.0"; done
cat >"$WORK/typical.yaml" <<SPEC
name: typical
registry: ghcr.io/org
python_version: "3.11"
apt_packages: [curl, git, jq, libpq5, libgl1, ca-certificates, gcc, make, unzip, zip]
packages: [${pkgs#, }]
requirements: requirements.txt
env: {PYTHONUNBUFFERED: "1"}
commands: ["echo ready"]
SPEC
for i in $(seq 50); do echo "requirement-$i==1.0.$i"; done >"$WORK/requirements.txt"

echo "== ispec tag (typical spec) vs ispec version"
compare "ispec version" "ispec tag typical.yaml" "$RUNS" -- "$ISPEC" version -- "$ISPEC" tag "$WORK/typical.yaml"

echo "== hashing 20,000 files / 200 MB"
mkdir -p "$WORK/tree/src"
head -c $((20000 * 10240)) /dev/urandom | (cd "$WORK/tree/src" && split -b 10240 -a 5 -d - f)
printf 'name: big\nsource_root: src\n' >"$WORK/tree/big.yaml"
echo "files: $(find "$WORK/tree/src" -type f | wc -l), bytes: $(du -sb "$WORK/tree/src" | cut -f1)"
cat "$WORK/tree/src"/* >/dev/null # warm the page cache for both
hash_all() { find "$WORK/tree/src" -type f -print0 | xargs -0 sha256sum >/dev/null; }
export -f hash_all
export WORK
compare "sha256sum (find | xargs sha256sum)" "ispec tag (source_root)" 5 -- bash -c hash_all -- "$ISPEC" tag "$WORK/tree/big.yaml"
echo "(throughput relative to sha256sum = 1 / ratio)"
/usr/bin/time -f "ispec tag peak RSS: %M KiB" "$ISPEC" tag "$WORK/tree/big.yaml" >/dev/null
