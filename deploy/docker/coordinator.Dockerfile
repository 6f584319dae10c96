# syntax=docker/dockerfile:1.7
# stilts coordinator image (also the `stilts sweep` client and a command-executor-only worker).
# Build from the repository root:
#   docker build -f deploy/docker/coordinator.Dockerfile -t stilts-coordinator:dev .
# Versions are pinned and explained in deploy/docker/README.md.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
# No protoc to install: .cargo/config.toml points every build script at the vendored one.
# The commit `stilts --version` prints (.git is not in the build context):
#   --build-arg STILTS_GIT_COMMIT=$(git rev-parse --short=12 HEAD)
ARG STILTS_GIT_COMMIT=""
WORKDIR /src
COPY . .
# The coordinator never trains: build without the burn trainer (no burn, no libtorch).
# Cache mounts keep the crates.io download and the target directory between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --profile dist --locked --no-default-features --bin stilts \
 && install -D -m 0755 target/dist/stilts /out/stilts

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# tini: PID 1 that forwards SIGTERM and reaps children (the command executor spawns processes).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 stilts \
 && useradd --system --uid 10001 --gid stilts --home-dir /var/lib/stilts --shell /usr/sbin/nologin stilts \
 && install -d -o stilts -g stilts -m 0750 /var/lib/stilts

COPY --from=build /out/stilts /usr/local/bin/stilts

ENV STILTS_STATE_DIR=/var/lib/stilts \
    STILTS_LOG=info
USER 10001:10001
WORKDIR /var/lib/stilts
VOLUME ["/var/lib/stilts"]
EXPOSE 50051

# grpc.health.v1 over gRPC with the binary itself: the "liveness" service is SERVING while the
# coordinator (leader or follower) runs; `--service ""` would ask "is this the leader?".
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/stilts", "health", "--coordinator", "http://127.0.0.1:50051", "--service", "liveness"]

ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/stilts"]
CMD ["coordinator", "--listen", "0.0.0.0:50051", "--state-dir", "/var/lib/stilts"]
