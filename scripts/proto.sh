#!/usr/bin/env bash
# Code generation for the gRPC API (api/ispec/v1/ispec.proto), with pinned
# generators so that everyone produces the same bytes:
#
#   scripts/proto.sh gen          regenerate the committed Go code in api/
#   scripts/proto.sh check        fail when the committed Go code is stale, or
#                                 when the Python stubs do not import
#   scripts/proto.sh python OUT   write Python stubs (ispec/v1/*_pb2*.py) to OUT
#
# protoc is Debian's protobuf-compiler (3.21), with the well-known types
# from libprotobuf-dev; Python stubs use Debian's protobuf-compiler-grpc
# plugin and import with Debian's python3-grpcio and python3-protobuf.
# Missing Debian packages are installed (needs root). protoc-gen-go is built
# at the google.golang.org/protobuf version in go.mod, protoc-gen-go-grpc at
# PROTOC_GEN_GO_GRPC_VERSION; both are cached in ISPEC_DEVENV_CACHE (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv) as protoc-gen-*-VERSION.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ISPEC_DEVENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ispec-devenv}"
GO="${GO:-go}"

PROTOC_SERIES="3.21."
PROTOC_GEN_GO_GRPC_VERSION="v1.6.0"
PROTO_FILES=(ispec/v1/ispec.proto)
GO_OUT_DIR="ispec/v1" # below api/

die() { printf 'proto: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'proto: %s\n' "$*" >&2; }

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# ensure_packages installs the Debian packages given that are missing.
ensure_packages() {
	local missing=() p
	for p in "$@"; do
		pkg_installed "$p" || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "missing Debian packages ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root"
	log "installing ${missing[*]} from Debian"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_protoc checks that protoc is the pinned series: its version is
# written into the generated code.
ensure_protoc() {
	ensure_packages protobuf-compiler libprotobuf-dev
	local v
	v="$(protoc --version)"
	[[ "$v" == "libprotoc $PROTOC_SERIES"* ]] ||
		die "protoc is $v; the generated code is pinned to protoc ${PROTOC_SERIES}x (Debian bookworm's protobuf-compiler)"
}

# plugin NAME MODULE_PATH VERSION: prints the path of the cached plugin
# binary, building it with `go install` first when missing.
plugin() {
	local name="$1" pkg="$2" ver="$3" bin tmp
	bin="$CACHE/$name-$ver"
	if [ ! -x "$bin" ]; then
		log "building $name $ver"
		mkdir -p "$CACHE"
		tmp="$(mktemp -d "$CACHE/.$name-$ver.XXXXXX")"
		if ! GOBIN="$tmp" GOFLAGS= "$GO" install "$pkg@$ver" >&2; then
			rm -rf "$tmp"
			die "building $name $ver failed"
		fi
		mv "$tmp/$name" "$bin"
		rm -rf "$tmp"
	fi
	echo "$bin"
}

protobuf_version() {
	(cd "$REPO_ROOT" && "$GO" list -m -f '{{.Version}}' google.golang.org/protobuf)
}

# gen_go OUT: writes the Go code for PROTO_FILES below OUT.
gen_go() {
	local out="$1" gen_go gen_grpc
	ensure_protoc
	gen_go="$(plugin protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$(protobuf_version)")"
	gen_grpc="$(plugin protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION")"
	mkdir -p "$out"
	(cd "$REPO_ROOT/api" && protoc -I . \
		--plugin=protoc-gen-go="$gen_go" --go_out="$out" --go_opt=paths=source_relative \
		--plugin=protoc-gen-go-grpc="$gen_grpc" --go-grpc_out="$out" --go-grpc_opt=paths=source_relative \
		"${PROTO_FILES[@]}")
}

cmd_gen() {
	gen_go "$REPO_ROOT/api"
	log "generated api/$GO_OUT_DIR"
}

cmd_check() {
	local status=0 rel
	tmp="$(mktemp -d)"
	trap 'rm -rf "$tmp"' EXIT # tmp is global: the trap runs after return
	gen_go "$tmp"
	# Every generated file must be committed as generated, and no stale
	# generated file may be left behind.
	for rel in $(cd "$REPO_ROOT/api/$GO_OUT_DIR" && ls ./*.pb.go 2>/dev/null; cd "$tmp/$GO_OUT_DIR" && ls ./*.pb.go); do
		echo "${rel#./}"
	done | sort -u >"$tmp/files"
	while read -r rel; do
		if [ ! -e "$REPO_ROOT/api/$GO_OUT_DIR/$rel" ] || [ ! -e "$tmp/$GO_OUT_DIR/$rel" ]; then
			log "api/$GO_OUT_DIR/$rel: committed but not generated, or generated but not committed"
			status=1
		elif ! diff -u "$REPO_ROOT/api/$GO_OUT_DIR/$rel" "$tmp/$GO_OUT_DIR/$rel" >&2; then
			status=1
		fi
	done <"$tmp/files"
	if [ "$status" != 0 ]; then
		die "the generated code in api/$GO_OUT_DIR is stale: run make proto and commit the result"
	fi
	log "api/$GO_OUT_DIR is up to date"
	cmd_python "$tmp/python"
	python_import "$tmp/python"
}

# python_import DIR: imports the stubs in DIR with Debian's interpreter (the
# one python3-grpcio and python3-protobuf are installed for).
python_import() {
	PYTHONPATH="$1" /usr/bin/python3 -c '
import grpc
from ispec.v1 import ispec_pb2, ispec_pb2_grpc
assert ispec_pb2.DESCRIPTOR.package == "ispec.v1"
svc = ispec_pb2.DESCRIPTOR.services_by_name["ImageService"]
assert sorted(m.name for m in svc.methods) == ["Build", "FindMissingBlobs", "ListBuilds", "Lock", "Lookup", "Resolve", "Watch", "WriteBlob"]
assert hasattr(ispec_pb2_grpc, "ImageServiceStub")
req = ispec_pb2.BuildRequest(input=ispec_pb2.SpecInput(spec_path="imagespec.yaml", spec=b"{}"), files_omitted=True)
assert ispec_pb2.BuildRequest.FromString(req.SerializeToString()) == req
' || die "the Python stubs do not import with /usr/bin/python3"
	log "Python stubs import with /usr/bin/python3"
}

cmd_python() {
	local out="${1:-}"
	[ -n "$out" ] || die "usage: scripts/proto.sh python OUTDIR"
	ensure_protoc
	ensure_packages protobuf-compiler-grpc python3-grpcio python3-protobuf
	mkdir -p "$out"
	out="$(cd "$out" && pwd)"
	(cd "$REPO_ROOT/api" && protoc -I . \
		--python_out="$out" --grpc_out="$out" \
		--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin \
		"${PROTO_FILES[@]}")
	log "wrote Python stubs to $out (import ispec.v1.ispec_pb2 with $out on sys.path)"
}

case "${1:-}" in
gen) cmd_gen ;;
check) cmd_check ;;
python) shift; cmd_python "$@" ;;
*) die "usage: scripts/proto.sh gen | check | python OUTDIR" ;;
esac
