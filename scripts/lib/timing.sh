# Shared timing helpers for the bench scripts (sourced, not run).

# now_ns: monotonic-enough wall clock in nanoseconds.
now_ns() { date +%s%N; }

# time_cmd CMD...: runs CMD with output discarded, prints its wall time in ms.
time_cmd() {
	local t0 t1
	t0=$(now_ns)
	"$@" >/dev/null 2>&1 || true
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000))
}

# median: reads numbers (one per line) and prints their median.
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# compare LABEL_A LABEL_B RUNS -- CMD_A... -- CMD_B...
# Runs A and B alternately RUNS times (after one warm-up each) and prints
# both medians (µs) and the ratio B/A. The machines are noisy: only the
# ratio, measured in one run, is meant to be compared.
compare() {
	local la="$1" lb="$2" runs="$3"
	shift 4
	local a=() b=()
	while [ "$1" != "--" ]; do a+=("$1"); shift; done
	shift
	b=("$@")
	"${a[@]}" >/dev/null 2>&1 || true
	"${b[@]}" >/dev/null 2>&1 || true
	local fa fb
	fa=$(mktemp) fb=$(mktemp)
	for _ in $(seq "$runs"); do
		time_cmd "${a[@]}" >>"$fa"
		time_cmd "${b[@]}" >>"$fb"
	done
	local ma mb
	ma=$(median <"$fa") mb=$(median <"$fb")
	rm -f "$fa" "$fb"
	awk -v la="$la" -v lb="$lb" -v ma="$ma" -v mb="$mb" -v n="$runs" \
		'BEGIN {printf "%-44s median %8.1f ms\n%-44s median %8.1f ms\nratio %s / %s = %.2f (%d runs each, alternating)\n\n", la, ma/1000, lb, mb/1000, lb, la, mb/ma, n}'
}

# build_crane OUT: builds crane from the go-containerregistry version in
# go.mod (cmd/crane is in the same module) without touching go.mod.
build_crane() {
	local ver dir
	ver=$(go list -m -f '{{.Version}}' github.com/google/go-containerregistry)
	dir=$(go mod download -json "github.com/google/go-containerregistry@$ver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	(cd "$dir" && go build -o "$1" ./cmd/crane)
}
