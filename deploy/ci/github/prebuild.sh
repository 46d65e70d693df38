#!/usr/bin/env bash
# The body of the ispec pre-build action (action.yml next to it); it runs
# the same from any CI system or a shell.
#
# Reads:   ISPEC_SPECS (files or glob patterns, separated by spaces or
#          newlines; patterns are expanded by ispec, never by this shell),
#          ISPEC_JOBS (default 4), ISPEC_RESULTS (default
#          $RUNNER_TEMP/ispec-results.json), ISPEC_BIN (default ispec),
#          ISPEC_PUSH (default true; false writes OCI tarballs to
#          ISPEC_OUTPUT_DIR, default $RUNNER_TEMP/ispec-images, instead of
#          pushing), ISPEC_NO_CACHE (true: no BuildKit cache),
#          and ispec's own settings: ISPEC_SERVER, ISPEC_TOKEN,
#          ISPEC_BUILDKIT_ADDR or BUILDKIT_HOST, ISPEC_REGISTRY, and the
#          registry credentials in the Docker config (docker login,
#          docker/login-action).
# Writes:  the results file and $RUNNER_TEMP/ispec-image-args.txt (one
#          --image NAME=REF@DIGEST per line); to $GITHUB_OUTPUT (when set)
#          results=PATH, metadata (the results document), digest and
#          imageid (REF@DIGEST) when there is exactly one image,
#          image-args (one line), image-args-file=PATH and exit-code;
#          ispec appends its summary to $GITHUB_STEP_SUMMARY (when set).
# Exits with ispec build's code: the worst of all specs.
set -euo pipefail

: "${ISPEC_SPECS:?ISPEC_SPECS: give the spec files or patterns to build}"
ispec="${ISPEC_BIN:-ispec}"
tmp="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
results="${ISPEC_RESULTS:-$tmp/ispec-results.json}"
args_file="$tmp/ispec-image-args.txt"
: >"$args_file"

# Empty settings are unset, so that ispec's defaults and config apply.
for v in ISPEC_SERVER ISPEC_TOKEN ISPEC_BUILDKIT_ADDR ISPEC_REGISTRY; do
	if [ -z "${!v:-}" ]; then unset "$v"; fi
done

# Split on whitespace without expanding patterns here.
set -f
# shellcheck disable=SC2206
specs=($ISPEC_SPECS)
set +f

flags=(--jobs "${ISPEC_JOBS:-4}" --json-out "$results" --progress plain)
case "${ISPEC_NO_CACHE:-false}" in
true) flags+=(--no-cache) ;;
false | "") ;;
*) echo "ispec: no-cache ${ISPEC_NO_CACHE}: expected true or false" >&2; exit 2 ;;
esac
case "${ISPEC_PUSH:-true}" in
true | "") flags+=(--image-args) ;;
false)
	out_dir="${ISPEC_OUTPUT_DIR:-$tmp/ispec-images}"
	mkdir -p "$out_dir"
	flags+=(--output "oci:$out_dir/")
	;;
*) echo "ispec: push ${ISPEC_PUSH}: expected true or false" >&2; exit 2 ;;
esac

code=0
"$ispec" build "${flags[@]}" -- "${specs[@]}" >"$args_file" || code=$?
if [ "${ISPEC_PUSH:-true}" = false ]; then
	# Without a push there are no references to register: stdout named files.
	: >"$args_file"
fi

image_args="$(tr '\n' ' ' <"$args_file" | sed 's/ *$//')"
echo "ispec: image arguments: ${image_args:-(none)}" >&2
# One image (found, built, or written): its digest and pinned reference.
digest="" imageid=""
if [ -f "$results" ]; then
	digests="$(sed -n 's/^ *"digest": *"\(sha256:[0-9a-f]\{64\}\)".*/\1/p' "$results")"
	refs="$(sed -n 's/^ *"ref": *"\([^"]*\)".*/\1/p' "$results")"
	if [ "$(printf '%s' "$digests" | grep -c .)" = 1 ] && [ "$(printf '%s' "$refs" | grep -c .)" = 1 ]; then
		digest="$digests"
		# Not pushed, the reference names nothing in a registry.
		[ "${ISPEC_PUSH:-true}" = false ] || imageid="$refs@$digests"
	fi
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
	{
		if [ -f "$results" ]; then
			echo "results=$results"
			delim="ispec_metadata_$RANDOM$RANDOM"
			echo "metadata<<$delim"
			cat "$results"
			echo "$delim"
		else
			echo "results="
			echo "metadata="
		fi
		echo "digest=$digest"
		echo "imageid=$imageid"
		echo "image-args=$image_args"
		echo "image-args-file=$args_file"
		echo "exit-code=$code"
	} >>"$GITHUB_OUTPUT"
fi
exit "$code"
