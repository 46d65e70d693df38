#!/usr/bin/env bash
# Chooses the ispec release the action installs, and writes it to
# $GITHUB_OUTPUT as version= (empty: install nothing).
#
# Reads: ISPEC_VERSION_INPUT (the version input), ISPEC_FROM_SOURCE (the
#        from-source input), ISPEC_ACTION_REF (the ref the action is
#        pinned to: github.action_ref).
# A release is vMAJOR.MINOR.PATCH (with an optional -suffix). The input
# wins; then the action's own ref when it is a release; else the ispec on
# PATH, which must then exist.
set -euo pipefail
release='^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$'
version=""
if [ -n "${ISPEC_FROM_SOURCE:-}" ]; then
	if [ -n "${ISPEC_VERSION_INPUT:-}" ]; then
		echo "ispec: give version or from-source, not both" >&2
		exit 2
	fi
elif [ -n "${ISPEC_VERSION_INPUT:-}" ]; then
	if ! [[ "$ISPEC_VERSION_INPUT" =~ $release ]]; then
		echo "ispec: version $ISPEC_VERSION_INPUT: expected a release such as v0.6.0 (from-source builds a branch or commit)" >&2
		exit 2
	fi
	version="$ISPEC_VERSION_INPUT"
elif [[ "${ISPEC_ACTION_REF:-}" =~ $release ]]; then
	version="$ISPEC_ACTION_REF"
elif ! command -v ispec >/dev/null; then
	echo "ispec: no ispec on PATH and the action is not pinned to a release (${ISPEC_ACTION_REF:-no ref}): give version (e.g. v0.6.0), pin the action (@v0.6.0), or set from-source" >&2
	exit 2
fi
echo "version=$version" >>"${GITHUB_OUTPUT:-/dev/null}"
echo "ispec: ${version:-the ispec on PATH}" >&2
