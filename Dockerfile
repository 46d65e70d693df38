# ispec's own image: the static ispec binary on a minimal runtime base.
#
#   docker buildx build --build-arg VERSION=v1.2.3 --build-arg REVISION=$(git rev-parse HEAD) -t ispec .
#
# Base images are build arguments, so that air-gapped builds can substitute
# mirrors: GO_IMAGE needs a Go toolchain matching go.mod (plus CA
# certificates at /etc/ssl/certs/ca-certificates.crt), RUNTIME_IMAGE needs
# nothing (the binary is static). The module proxy comes from GOPROXY.
#
# There is deliberately no "# syntax=" line: the Dockerfile frontend built
# into BuildKit (1.4+) understands everything used here, and a syntax line
# would make every build pull a frontend image from Docker Hub.

ARG GO_IMAGE=golang:1.26-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
ARG GOPROXY=https://proxy.golang.org,direct
ARG GOFLAGS=
ARG VERSION=dev
# Explicit cache locations, so the cache mounts below are right whatever
# GOPATH the Go image sets.
ENV GOMODCACHE=/root/go/pkg/mod \
    GOCACHE=/root/.cache/go-build \
    GOPROXY=${GOPROXY} \
    GOFLAGS=${GOFLAGS} \
    CGO_ENABLED=0
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/usr/local/bin/ispec ./cmd/ispec && \
    mkdir -p /out/etc/ssl/certs /out/var/cache/ispec && \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt

FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
ARG REVISION=
ARG SOURCE=https://github.com/ispec-dev/ispec
ARG LICENSES=Apache-2.0
LABEL org.opencontainers.image.title="ispec" \
      org.opencontainers.image.description="Content-addressed container image builder" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="${LICENSES}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /out/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/var/cache/ispec /var/cache/ispec
COPY --from=build /out/usr/local/bin/ispec /usr/local/bin/ispec
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    ISPEC_CACHE_DIR=/var/cache/ispec
USER 65532:65532
# gRPC (ispec serve --listen) and Prometheus metrics (--metrics-listen).
EXPOSE 8080 9090
ENTRYPOINT ["ispec"]
CMD ["serve"]
