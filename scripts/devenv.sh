#!/usr/bin/env bash
# Development and test environment for ispec: a BuildKit daemon, a CNCF
# distribution registry, base-image fixtures in that registry, and a PEP 503
# Python index, all on loopback. Needs root (buildkitd with runc) and Debian.
#
#   scripts/devenv.sh up       install what is missing, start everything, push fixtures
#   scripts/devenv.sh down     stop the processes (state and caches are kept)
#   scripts/devenv.sh status   show what runs; exit 1 unless everything is up
#   scripts/devenv.sh env      print KEY=VALUE lines for the tests (shell-sourceable)
#
# State lives in ISPEC_DEVENV_DIR (default <repo>/.devenv); built buildkit
# binaries and the Debian root filesystem are cached in ISPEC_DEVENV_CACHE
# (default ${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv) across runs.
#
# Settings (environment):
#   ISPEC_DEVENV_REGISTRY_PORT  registry port on 127.0.0.1 (default 5000)
#   ISPEC_DEVENV_INDEX_PORT     Python index port on 127.0.0.1 (default 5081)
#   ISPEC_DEVENV_SNAPSHOTTER    buildkit OCI worker snapshotter (default overlayfs)
#   ISPEC_DEVENV_DEBIAN_MIRROR  mirror for debootstrap (default http://deb.debian.org/debian)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${ISPEC_DEVENV_DIR:-$REPO_ROOT/.devenv}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
CACHE="${ISPEC_DEVENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv}"

REGISTRY_PORT="${ISPEC_DEVENV_REGISTRY_PORT:-5000}"
INDEX_PORT="${ISPEC_DEVENV_INDEX_PORT:-5081}"
SNAPSHOTTER="${ISPEC_DEVENV_SNAPSHOTTER:-overlayfs}"
DEBIAN_MIRROR="${ISPEC_DEVENV_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SUITE=bookworm

REGISTRY="127.0.0.1:$REGISTRY_PORT"
BASE_PYTHON="$REGISTRY/fixtures/debian-python:$DEBIAN_SUITE"
BASE_BUSYBOX="$REGISTRY/fixtures/busybox:latest"
INDEX_URL="http://127.0.0.1:$INDEX_PORT/simple"

BUILDKIT_STATE="$STATE/buildkit"
REGISTRY_STATE="$STATE/registry"
INDEX_STATE="$STATE/pyindex"
BIN="$STATE/bin"

# A unix socket path must fit in 108 bytes; fall back to a short path.
SOCKET="$STATE/buildkitd.sock"
if [ "${#SOCKET}" -gt 100 ]; then
	SOCKET="/tmp/ispec-devenv-$(printf '%s' "$STATE" | sha256sum | cut -c1-12)/buildkitd.sock"
fi
BUILDKIT_HOST="unix://$SOCKET"

START_TIME=$SECONDS
log() { printf '[devenv %3ds] %s\n' "$((SECONDS - START_TIME))" "$*" >&2; }
die() { printf 'devenv: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

# pid_alive NAME: true when the pid file of NAME names a live process whose
# command line still mentions NAME's binary (guards against reused pids).
pid_alive() {
	local pidfile="$STATE/$1.pid" match="$2" pid
	[ -f "$pidfile" ] || return 1
	pid="$(cat "$pidfile")"
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$match"
}

# http_status HOST PORT PATH: prints the HTTP status code of GET PATH, or 000.
http_status() {
	timeout 3 bash -c '
		exec 3<>"/dev/tcp/$1/$2" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n" "$3" "$1" "$2" >&3
		IFS=" " read -r _ code _ <&3
		printf "%s" "$code"
	' _ "$1" "$2" "$3" 2>/dev/null || printf '000'
}

port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

# wait_for DESC SECONDS CMD...: retries CMD until it succeeds or time runs out.
wait_for() {
	local desc="$1" secs="$2" i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	return 1
}

# start_bg NAME LOG CMD...: starts CMD detached, with its pid in STATE/NAME.pid.
start_bg() {
	local name="$1" logfile="$2"
	shift 2
	setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
	echo $! >"$STATE/$name.pid"
}

stop_pid() {
	local name="$1" match="$2" pid i
	if ! pid_alive "$name" "$match"; then
		rm -f "$STATE/$name.pid"
		return 0
	fi
	pid="$(cat "$STATE/$name.pid")"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not stop in 20s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$STATE/$name.pid"
	log "stopped $name"
}

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# ---------------------------------------------------------------- steps

ensure_root() {
	[ "$(id -u)" = 0 ] || die "buildkitd with runc needs root; run as root (CI runs as root)"
}

ensure_packages() {
	local missing=() p
	for p in runc docker-registry debootstrap busybox-static redis-server; do
		pkg_installed "$p" || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	log "installing ${missing[*]} from Debian"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	# Debian's docker-registry package starts a system service on :5000 where
	# systemd runs; our registry has its own config and port.
	if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null &&
		systemctl is-active --quiet docker-registry 2>/dev/null; then
		log "stopping and disabling the docker-registry system service"
		systemctl disable --now docker-registry >/dev/null 2>&1 || true
	fi
}

buildkit_version() {
	(cd "$REPO_ROOT" && go list -m -f '{{.Version}}' github.com/moby/buildkit)
}

# ensure_buildkit: buildkitd and buildctl at exactly go.mod's version, cached.
ensure_buildkit() {
	local ver dir out tmp
	ver="$(buildkit_version)" || die "cannot read the buildkit version from go.mod"
	BUILDKIT_BIN="$CACHE/buildkit-$ver"
	if [ -x "$BUILDKIT_BIN/buildkitd" ] && [ -x "$BUILDKIT_BIN/buildctl" ]; then
		return 0
	fi
	log "building buildkitd and buildctl $ver (cold: a couple of minutes)"
	out="$(cd "$REPO_ROOT" && go mod download -json "github.com/moby/buildkit@$ver")" ||
		die "go mod download github.com/moby/buildkit@$ver failed"
	dir="$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	[ -d "$dir" ] || die "no module directory for github.com/moby/buildkit@$ver"
	mkdir -p "$CACHE"
	tmp="$(mktemp -d "$CACHE/.buildkit-$ver.XXXXXX")"
	# `go install` refuses buildkit (its go.mod has exclude directives), so
	# build inside the (read-only) module directory, which needs no writes.
	if ! (
		cd "$dir"
		export GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=readonly
		go build -ldflags "-X github.com/moby/buildkit/version.Version=$ver" -o "$tmp/buildkitd" ./cmd/buildkitd &&
			go build -ldflags "-X github.com/moby/buildkit/version.Version=$ver" -o "$tmp/buildctl" ./cmd/buildctl
	) >"$tmp.log" 2>&1; then
		tail -n 30 "$tmp.log" >&2
		rm -rf "$tmp" "$tmp.log"
		die "building buildkit $ver failed (log above)"
	fi
	rm -f "$tmp.log"
	rm -rf "$BUILDKIT_BIN"
	mv "$tmp" "$BUILDKIT_BIN"
	log "built buildkit $ver into $BUILDKIT_BIN"
}

ensure_tools() {
	mkdir -p "$BIN"
	(cd "$REPO_ROOT" && go build -o "$BIN/ispec-fixtures" ./internal/cmd/fixtures &&
		go build -o "$BIN/ispec-devindex" ./internal/cmd/devindex) ||
		die "building the fixture tools failed"
}

ensure_registry() {
	if pid_alive registry docker-registry; then return 0; fi
	if port_open 127.0.0.1 "$REGISTRY_PORT"; then
		die "port $REGISTRY_PORT is taken by another process; set ISPEC_DEVENV_REGISTRY_PORT"
	fi
	mkdir -p "$REGISTRY_STATE/data"
	cat >"$REGISTRY_STATE/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $REGISTRY_STATE/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$REGISTRY_PORT
EOF
	log "starting the registry on $REGISTRY"
	start_bg registry "$REGISTRY_STATE/registry.log" docker-registry serve "$REGISTRY_STATE/config.yml"
	registry_ready() { [ "$(http_status 127.0.0.1 "$REGISTRY_PORT" /v2/)" = 200 ]; }
	wait_for registry 30 registry_ready ||
		die "the registry did not answer on $REGISTRY within 30s; see $REGISTRY_STATE/registry.log"
}

ensure_buildkitd() {
	if pid_alive buildkitd buildkitd; then return 0; fi
	mkdir -p "$BUILDKIT_STATE/root" "$(dirname "$SOCKET")"
	cat >"$BUILDKIT_STATE/buildkitd.toml" <<EOF
[worker.oci]
  enabled = true
  snapshotter = "$SNAPSHOTTER"
[worker.containerd]
  enabled = false
[registry."127.0.0.1:$REGISTRY_PORT"]
  http = true
  insecure = true
[registry."localhost:$REGISTRY_PORT"]
  http = true
  insecure = true
EOF
	rm -f "$SOCKET"
	log "starting buildkitd on $BUILDKIT_HOST"
	start_bg buildkitd "$BUILDKIT_STATE/buildkitd.log" \
		"$BUILDKIT_BIN/buildkitd" --config "$BUILDKIT_STATE/buildkitd.toml" \
		--root "$BUILDKIT_STATE/root" --addr "$BUILDKIT_HOST"
	wait_for buildkitd 60 "$BUILDKIT_BIN/buildctl" --addr "$BUILDKIT_HOST" debug workers ||
		die "buildkitd did not answer within 60s; see $BUILDKIT_STATE/buildkitd.log"
}

ensure_index() {
	if pid_alive devindex ispec-devindex; then return 0; fi
	if port_open 127.0.0.1 "$INDEX_PORT"; then
		die "port $INDEX_PORT is taken by another process; set ISPEC_DEVENV_INDEX_PORT"
	fi
	mkdir -p "$INDEX_STATE/wheels"
	log "starting the Python index on $INDEX_URL"
	start_bg devindex "$INDEX_STATE/devindex.log" \
		"$BIN/ispec-devindex" -dir "$INDEX_STATE/wheels" -addr "127.0.0.1:$INDEX_PORT" -log "$INDEX_STATE/access.log"
	index_ready() { [ "$(http_status 127.0.0.1 "$INDEX_PORT" /simple/)" = 200 ]; }
	wait_for devindex 30 index_ready ||
		die "the Python index did not answer within 30s; see $INDEX_STATE/devindex.log"
}

# umount_under DIR: unmounts whatever a failed debootstrap left mounted below DIR.
umount_under() {
	local m
	awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# ensure_debian_rootfs: a cached tarball of Debian minbase with Python.
rootfs_tar() { echo "$CACHE/rootfs/debian-$DEBIAN_SUITE-python-$(dpkg --print-architecture).tar.gz"; }

ensure_debian_rootfs() {
	local arch work
	arch="$(dpkg --print-architecture)"
	ROOTFS_TAR="$(rootfs_tar)"
	[ -s "$ROOTFS_TAR" ] && return 0
	mkdir -p "$CACHE/rootfs"
	work="$(mktemp -d "$CACHE/rootfs/.build.XXXXXX")"
	log "debootstrap $DEBIAN_SUITE (minbase + python3) from $DEBIAN_MIRROR (cold: about a minute)"
	if ! debootstrap --variant=minbase --arch="$arch" \
		--include=python3,python3-venv,python3-pip,ca-certificates \
		"$DEBIAN_SUITE" "$work/rootfs" "$DEBIAN_MIRROR" >"$work.log" 2>&1; then
		umount_under "$work"
		tail -n 20 "$work.log" >&2
		rm -rf "$work"
		die "debootstrap failed (log above)"
	fi
	umount_under "$work"
	rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/archives/"*.deb \
		"$work/rootfs/var/cache/apt/"*.bin "$work/rootfs/var/log/"*.log "$work/rootfs/var/log/apt/"* \
		"$work/rootfs/debootstrap"
	tar --numeric-owner --sort=name -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
	mv "$work/rootfs.tar.gz" "$ROOTFS_TAR"
	rm -rf "$work" "$work.log"
	log "cached the root filesystem in $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
}

push_fixtures() {
	"$BIN/ispec-fixtures" push-busybox -ref "$BASE_BUSYBOX" -busybox /bin/busybox >&2
	"$BIN/ispec-fixtures" push-tar -ref "$BASE_PYTHON" -tar "$ROOTFS_TAR" -env LANG=C.UTF-8 -cmd /bin/bash >&2
}

# ---------------------------------------------------------------- env

# buildctl_path: the buildctl ensure_buildkit provides (known without it).
buildctl_path() {
	if [ -n "${BUILDKIT_BIN:-}" ]; then
		echo "$BUILDKIT_BIN/buildctl"
	else
		echo "$CACHE/buildkit-$(buildkit_version)/buildctl"
	fi
}

# buildkit_bin: the directory of the cached buildkit binaries.
buildkit_bin() { printf '%s' "${BUILDKIT_BIN:-$CACHE/buildkit-$(buildkit_version)}"; }

env_lines() {
	printf '%s=%q\n' \
		BUILDKIT_HOST "$BUILDKIT_HOST" \
		ISPEC_TEST_REGISTRY "$REGISTRY" \
		ISPEC_TEST_REGISTRY_LOG "$REGISTRY_STATE/registry.log" \
		ISPEC_TEST_BASE_PYTHON "$BASE_PYTHON" \
		ISPEC_TEST_BASE_BUSYBOX "$BASE_BUSYBOX" \
		ISPEC_TEST_PYPI_INDEX "$INDEX_URL" \
		ISPEC_TEST_PYPI_WHEELS "$INDEX_STATE/wheels" \
		ISPEC_TEST_PYPI_LOG "$INDEX_STATE/access.log" \
		ISPEC_TEST_BUILDKITD_LOG "$BUILDKIT_STATE/buildkitd.log" \
		ISPEC_TEST_BUILDCTL "$(buildctl_path)" \
		ISPEC_TEST_BUILDKITD_BIN "$(buildkit_bin)/buildkitd" \
		ISPEC_TEST_BUILDKITD_CONFIG "$BUILDKIT_STATE/buildkitd.toml"
}

json_str() { local s="${1//\\/\\\\}"; printf '"%s"' "${s//\"/\\\"}"; }

write_env_files() {
	env_lines >"$STATE/env.tmp"
	mv "$STATE/env.tmp" "$STATE/env"
	{
		printf '{\n'
		printf '  "BUILDKIT_HOST": %s,\n' "$(json_str "$BUILDKIT_HOST")"
		printf '  "ISPEC_TEST_REGISTRY": %s,\n' "$(json_str "$REGISTRY")"
		printf '  "ISPEC_TEST_REGISTRY_LOG": %s,\n' "$(json_str "$REGISTRY_STATE/registry.log")"
		printf '  "ISPEC_TEST_BASE_PYTHON": %s,\n' "$(json_str "$BASE_PYTHON")"
		printf '  "ISPEC_TEST_BASE_BUSYBOX": %s,\n' "$(json_str "$BASE_BUSYBOX")"
		printf '  "ISPEC_TEST_PYPI_INDEX": %s,\n' "$(json_str "$INDEX_URL")"
		printf '  "ISPEC_TEST_PYPI_WHEELS": %s,\n' "$(json_str "$INDEX_STATE/wheels")"
		printf '  "ISPEC_TEST_PYPI_LOG": %s,\n' "$(json_str "$INDEX_STATE/access.log")"
		printf '  "ISPEC_TEST_BUILDKITD_LOG": %s,\n' "$(json_str "$BUILDKIT_STATE/buildkitd.log")"
		printf '  "ISPEC_TEST_BUILDCTL": %s,\n' "$(json_str "$(buildctl_path)")"
		printf '  "ISPEC_TEST_BUILDKITD_BIN": %s,\n' "$(json_str "$(buildkit_bin)/buildkitd")"
		printf '  "ISPEC_TEST_BUILDKITD_CONFIG": %s\n' "$(json_str "$BUILDKIT_STATE/buildkitd.toml")"
		printf '}\n'
	} >"$STATE/env.json.tmp"
	mv "$STATE/env.json.tmp" "$STATE/env.json"
}

# ---------------------------------------------------------------- commands

cmd_up() {
	ensure_root
	exec 9>"$STATE/.lock"
	flock -w 1800 9 || die "another devenv.sh run holds $STATE/.lock"
	ensure_packages
	# The root filesystem (network and disk bound) is made while buildkit
	# builds (CPU bound).
	local rootfs_pid
	ensure_debian_rootfs &
	rootfs_pid=$!
	ensure_buildkit
	ensure_tools
	ensure_registry
	ensure_buildkitd
	ensure_index
	wait "$rootfs_pid" || die "making the Debian root filesystem failed"
	ROOTFS_TAR="$(rootfs_tar)"
	push_fixtures
	write_env_files
	log "up: BUILDKIT_HOST=$BUILDKIT_HOST registry=$REGISTRY index=$INDEX_URL (env in $STATE/env)"
}

cmd_down() {
	exec 9>"$STATE/.lock"
	flock -w 1800 9 || die "another devenv.sh run holds $STATE/.lock"
	stop_pid devindex ispec-devindex
	stop_pid buildkitd buildkitd
	stop_pid registry docker-registry
	rm -f "$STATE/env" "$STATE/env.json"
}

cmd_status() {
	local ok=0 code
	if pid_alive registry docker-registry; then
		code="$(http_status 127.0.0.1 "$REGISTRY_PORT" /v2/)"
		echo "registry:  running (pid $(cat "$STATE/registry.pid")) on $REGISTRY, /v2/ answers $code"
		[ "$code" = 200 ] || ok=1
	else
		echo "registry:  stopped"
		ok=1
	fi
	if pid_alive buildkitd buildkitd; then
		echo "buildkitd: running (pid $(cat "$STATE/buildkitd.pid")) on $BUILDKIT_HOST"
	else
		echo "buildkitd: stopped"
		ok=1
	fi
	if pid_alive devindex ispec-devindex; then
		code="$(http_status 127.0.0.1 "$INDEX_PORT" /simple/)"
		echo "index:     running (pid $(cat "$STATE/devindex.pid")) on $INDEX_URL, answers $code"
		[ "$code" = 200 ] || ok=1
	else
		echo "index:     stopped"
		ok=1
	fi
	if [ -f "$STATE/env.json" ]; then echo "env:       $STATE/env.json"; else echo "env:       not written (run up)"; ok=1; fi
	return "$ok"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
env) env_lines ;;
*)
	echo "usage: $0 up|down|status|env" >&2
	exit 2
	;;
esac
