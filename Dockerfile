# syntax=docker/dockerfile:1
#
# One image for every scpgate role: the entrypoint is the scpgate binary and
# the command picks the role (driver, ingest, commander, sim, replay...).
# Drivers run scpgate-driver instead (docker-compose.yml sets it as their
# entrypoint): the same `driver` command built with -tags driveronly, without
# the code of the other roles (embedded NATS server, SQLite, PostgreSQL),
# which keeps an empty driver's resident memory at two thirds.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t scpgate .
#   docker run --rm scpgate help driver

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/scpgate ./cmd/scpgate && \
    go build -trimpath -tags driveronly -ldflags "-s -w -X main.version=${VERSION}" -o /out/scpgate-driver ./cmd/scpgate && \
    go build -trimpath -ldflags "-s -w" -o /out/healthcheck ./deploy/healthcheck && \
    /out/scpgate version && /out/scpgate-driver version

# Static binaries only: no shell, no package manager, a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scpgate /usr/local/bin/scpgate
COPY --from=build /out/scpgate-driver /usr/local/bin/scpgate-driver
COPY --from=build /out/healthcheck /usr/local/bin/healthcheck
USER nonroot:nonroot
WORKDIR /home/nonroot
# 3001: controllers (driver); 8080: HTTP (health, stats, query and command APIs).
EXPOSE 3001 8080
ENTRYPOINT ["/usr/local/bin/scpgate"]
CMD ["help"]
