#!/usr/bin/env bash
# The body of the ispec pre-build action (action.yml next to it); it runs
# the same from any CI system or a shell.
#
# Reads:   ISPEC_SPECS (files or glob patterns, separated by spaces or
#          newlines; patterns are expanded by ispec, never by this shell),
#          ISPEC_JOBS (default 4), ISPEC_RESULTS (default
#          $RUNNER_TEMP/ispec-results.json), ISPEC_BIN (default ispec),
#          and ispec's own settings: ISPEC_SERVER, ISPEC_TOKEN,
#          ISPEC_BUILDKIT_ADDR or BUILDKIT_HOST, ISPEC_REGISTRY, and the
#          registry credentials in the Docker config (docker login,
#          docker/login-action).
# Writes:  the results file; to $GITHUB_OUTPUT (when set) results=PATH,
#          image-args=--image NAME=REF@DIGEST ... (one line) and exit-code;
#          ispec appends its summary to $GITHUB_STEP_SUMMARY (when set).
# Exits with ispec build's code: the worst of all specs.
set -euo pipefail

: "${ISPEC_SPECS:?ISPEC_SPECS: give the spec files or patterns to build}"
ispec="${ISPEC_BIN:-ispec}"
tmp="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
results="${ISPEC_RESULTS:-$tmp/ispec-results.json}"
args_file="$(mktemp "$tmp/ispec-image-args.XXXXXX")"
trap 'rm -f "$args_file"' EXIT

# Empty settings are unset, so that ispec's defaults and config apply.
for v in ISPEC_SERVER ISPEC_TOKEN ISPEC_BUILDKIT_ADDR ISPEC_REGISTRY; do
	if [ -z "${!v:-}" ]; then unset "$v"; fi
done

# Split on whitespace without expanding patterns here.
set -f
# shellcheck disable=SC2206
specs=($ISPEC_SPECS)
set +f

code=0
"$ispec" build --jobs "${ISPEC_JOBS:-4}" --json-out "$results" --image-args --progress plain -- "${specs[@]}" >"$args_file" || code=$?

image_args="$(tr '\n' ' ' <"$args_file" | sed 's/ *$//')"
echo "ispec: image arguments: ${image_args:-(none)}" >&2
if [ -n "${GITHUB_OUTPUT:-}" ]; then
	{
		if [ -f "$results" ]; then echo "results=$results"; else echo "results="; fi
		echo "image-args=$image_args"
		echo "exit-code=$code"
	} >>"$GITHUB_OUTPUT"
fi
exit "$code"
