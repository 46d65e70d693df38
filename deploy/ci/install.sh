#!/usr/bin/env bash
# Installs a released ispec binary for CI jobs: downloads
# ispec_VERSION_linux_ARCH.tar.gz and its checksums file, verifies the
# archive's sha256 against it, and puts `ispec` in ISPEC_INSTALL_DIR. When
# that folder already holds this version (a warm CI cache), it downloads
# nothing. Used by the GitHub action and the GitLab template.
#
# Reads:  ISPEC_VERSION (a release such as v0.6.0; required),
#         ISPEC_INSTALL_DIR (default $HOME/.local/bin),
#         ISPEC_RELEASE_URL (default the project's GitHub releases; a
#         mirror serves VERSION/FILE under it).
# Prints: the installed binary's path on stdout.
set -euo pipefail
VERSION="${ISPEC_VERSION:?ISPEC_VERSION: give the ispec release to install, e.g. v0.6.0}"
DIR="${ISPEC_INSTALL_DIR:-$HOME/.local/bin}"
BASE="${ISPEC_RELEASE_URL:-https://github.com/ispec-dev/ispec/releases/download}"
case "$VERSION" in
v[0-9]*) ;;
*) echo "ispec install: ISPEC_VERSION $VERSION: expected a release such as v0.6.0 (to build from source, use go install)" >&2; exit 2 ;;
esac
case "$(uname -s)/$(uname -m)" in
Linux/x86_64 | Linux/amd64) platform=linux_amd64 ;;
Linux/aarch64 | Linux/arm64) platform=linux_arm64 ;;
*) echo "ispec install: no release for $(uname -s)/$(uname -m); build from source with go install" >&2; exit 2 ;;
esac

bin="$DIR/ispec"
if [ -x "$bin" ] && [ "$("$bin" version 2>/dev/null | head -n1)" = "ispec $VERSION" ]; then
	echo "ispec install: $VERSION already in $DIR" >&2
	echo "$bin"
	exit 0
fi

archive="ispec_${VERSION}_${platform}.tar.gz"
sums="ispec_${VERSION}_checksums.txt"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fetch() {
	if command -v curl >/dev/null; then
		curl -fsSL --retry 3 -o "$2" "$1"
	else
		wget -q -O "$2" "$1"
	fi
}
fetch "$BASE/$VERSION/$archive" "$work/$archive" || { echo "ispec install: downloading $BASE/$VERSION/$archive failed" >&2; exit 3; }
fetch "$BASE/$VERSION/$sums" "$work/$sums" || { echo "ispec install: downloading $BASE/$VERSION/$sums failed" >&2; exit 3; }
want="$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$work/$sums")"
got="$(sha256sum "$work/$archive" | cut -d' ' -f1)"
if [ -z "$want" ]; then
	echo "ispec install: $sums lists no $archive" >&2
	exit 3
fi
if [ "$want" != "$got" ]; then
	echo "ispec install: checksum mismatch for $archive: $sums says sha256:$want, the download is sha256:$got; nothing installed" >&2
	exit 3
fi
tar -xzf "$work/$archive" -C "$work" ./ispec
mkdir -p "$DIR"
install -m 0755 "$work/ispec" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
echo "ispec install: $("$bin" version | head -n1) in $DIR (sha256:$got)" >&2
echo "$bin"
