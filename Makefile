# ispec: build, test and lint, plus the development environment (BuildKit,
# a registry with base-image fixtures, a Python index; see scripts/devenv.sh).

GO ?= go
DEVENV := bash scripts/devenv.sh

# Release archives (static linux/amd64 and arm64 binaries, checksums) in
# dist/: make release VERSION=v0.6.0. The CI action and template download
# exactly these (deploy/ci/install.sh).
release:
	GO=$(GO) bash scripts/release.sh $(VERSION)

.PHONY: check staticcheck release build test fuzz demo lint proto proto-check deploy-check docs env-up env-down env-status

build:
	$(GO) build -o bin/ispec ./cmd/ispec

# The end-to-end tests need the environment; `make env-up` starts it. The
# pipeline and the server are concurrent: every test runs under the race
# detector.
test: env-up proto-check lint deploy-check
	$(GO) test -race -count=1 -timeout 50m ./...
	$(MAKE) fuzz FUZZTIME=150000x

# The fast inner loop, with nothing started: vet, gofmt, a tidy go.mod,
# staticcheck (pinned, built once from the module proxy) and every test
# that needs no external service (`go test -short`: the end-to-end tests
# skip themselves; testenv.External).
check: lint staticcheck
	$(GO) mod tidy -diff
	$(GO) test -short -count=1 ./...

staticcheck:
	GO=$(GO) bash scripts/staticcheck.sh ./...

# Render every kustomize overlay under deploy/ and validate each object
# strictly against its Kubernetes (or Prometheus Operator) API type, offline.
# Its own module (deploy/validate), so the Kubernetes dependencies stay out
# of ispec's go.mod.
deploy-check:
	cd deploy/validate && $(GO) test -count=1 ./...

# A short fuzz run of the spec decoder (no panic, no hang on any input).
# Budgets are counts of executions, not durations: with a duration, Go 1.26's
# fuzz coordinator can report "context deadline exceeded" at the deadline
# with no failing input (golang/go#75804, fixed in Go 1.27).
FUZZTIME ?= 500000x
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./spec

# The main job end to end: build and push the demo spec on the local
# environment, then build it again (found in the registry: nothing built).
demo: env-up build
	eval "$$($(DEVENV) env)" && export BUILDKIT_HOST && \
	bin/ispec build --progress plain examples/demo/demo.yaml && \
	bin/ispec build --json examples/demo/demo.yaml

# The gRPC API's generated Go code (api/ispec/v1), from ispec.proto with
# pinned generators (scripts/proto.sh). proto-check fails when the
# committed code is stale or the Python stubs do not import.
proto:
	GO=$(GO) bash scripts/proto.sh gen

proto-check:
	GO=$(GO) bash scripts/proto.sh check

# The CLI reference (docs/cli) from the commands themselves; `go test
# ./cmd/ispec -run TestCLIReferenceIsCurrent` fails when it is stale.
docs:
	$(GO) run ./cmd/ispec gen-cli-docs docs/cli

lint:
	$(GO) vet ./...
	@out="$$(find . -path './.*' -prune -o -name '*.go' -print | xargs gofmt -l)"; \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

env-up:
	$(DEVENV) up

env-down:
	$(DEVENV) down

env-status:
	$(DEVENV) status
