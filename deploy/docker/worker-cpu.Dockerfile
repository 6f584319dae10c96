# syntax=docker/dockerfile:1.7
# stilts CPU worker: the built-in trainer on burn's pure-Rust CPU backend plus the command
# executor. For laptops, CI and the compose cluster; GPU nodes use worker-cuda.Dockerfile.
# Build from the repository root:
#   docker build -f deploy/docker/worker-cpu.Dockerfile -t stilts-worker-cpu:dev .

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
# No protoc to install (vendored, see .cargo/config.toml). --build-arg STILTS_GIT_COMMIT=… sets the
# commit `stilts --version` prints.
ARG STILTS_GIT_COMMIT=""
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --profile dist --locked --bin stilts \
 && install -D -m 0755 target/dist/stilts /out/stilts

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# python3 + pip: `pip:PACKAGE` model sources; tini: signal forwarding and child reaping.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 stilts \
 && useradd --system --uid 10001 --gid stilts --create-home --home-dir /home/stilts --shell /usr/sbin/nologin stilts \
 && install -d -o stilts -g stilts -m 0750 /var/lib/stilts /var/lib/stilts/artifacts

COPY --from=build /out/stilts /usr/local/bin/stilts

ENV STILTS_ARTIFACTS=/var/lib/stilts/artifacts \
    STILTS_LOG=info
USER 10001:10001
WORKDIR /home/stilts
VOLUME ["/var/lib/stilts"]
HEALTHCHECK NONE
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/stilts"]
CMD ["worker", "--backend", "cpu"]
