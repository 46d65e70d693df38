# ispec: build, test and lint, plus the development environment (BuildKit,
# a registry with base-image fixtures, a Python index; see scripts/devenv.sh).

GO ?= go
DEVENV := bash scripts/devenv.sh

.PHONY: build test lint env-up env-down env-status

build:
	$(GO) build -o bin/ispec ./cmd/ispec

# The end-to-end tests need the environment; `make env-up` starts it.
test: env-up
	$(GO) test -count=1 ./...

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
