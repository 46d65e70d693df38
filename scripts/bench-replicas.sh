#!/usr/bin/env bash
# Benchmarks of shared coordination, against a local redis-server and the
# development environment (make env-up):
#   - 50 callers across 2 replicas vs one caller's build (target <= 1.2x);
#   - coordination overhead per build: lease, publish, finish, release
#     (target < 5 ms median);
#   - on a pool of 2 daemons, specs sharing base and apt build on one
#     daemon (TestPool... asserts it).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== 50 callers across 2 replicas vs one caller"
go test ./server -run '^$' -bench 'BenchmarkReplicas$' -benchtime 1x -count=1 -v | grep -E 'ratio|^(ok|FAIL|---)'
echo "== coordination overhead per build (median-ms)"
go test ./coord -run '^$' -bench CoordinationOverhead -benchtime 300x | grep -E 'Benchmark|^(ok|FAIL)'
echo "== pool placement (same base and apt set -> same daemon; a stopped daemon is skipped)"
go test ./server -run 'TestPoolKeepsRelatedSpecsOnOneDaemonAndSkipsADownOne$' -count=1 -v | grep -E '^(ok|FAIL|---)'
echo "== apt layer reuse on the pool (the second spec's apt step reported cached)"
go test ./pool -run 'TestRelatedSpecsReuseTheAptLayer$' -count=1 -v | grep -E '^(ok|FAIL|---)'
