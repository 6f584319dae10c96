#!/usr/bin/env bash
# CI step for the `libtorch` cargo feature (burn-tch → tch → torch-sys), so the GPU build cannot
# rot, without installing PyTorch: clippy (-D warnings) of the feature against torch 2.9.0 (the
# pinned version), the LibTorch-only tests (worker/trainer/tests/fused.rs: the fused encoder
# layer against the burn layer, and a real fine-tune) run for real on LibTorch 2.9.0's CPU
# device, then clippy again against the headers of one newer torch (2.11.0, see the end).
#
# torch-sys's build script compiles its C++ bindings against libtorch 2.9.0 headers even for
# `cargo check`, and its default download host is not reachable from CI. So this fetches the
# PyPI wheel torch==2.9.0 alone (`--no-deps`: ~900 MB instead of 6.8 GB with its nvidia
# wheels) and unpacks, as a minimal libtorch directory: torch/include (~60 MB), the CPU runtime
# (libtorch_cpu.so, libc10.so, libgomp; ~440 MB) and the wheel's version in `build-version`
# (torch-sys verifies it is 2.9.0); then deletes the wheel. The wheel's libtorch.so only links
# libtorch_cpu and libtorch_cuda together; the CUDA half is not unpacked, so a two-line
# libtorch.so that links libtorch_cpu alone stands in for it, and libtorch_cpu's two CUDA
# dependencies (libcudart, libcupti: its profiler links them, they load without a GPU) come from
# their own small PyPI wheels (nvidia-cuda-runtime-cu12, nvidia-cuda-cupti-cu12, 12.8 as the
# wheel was built with). The C++ bindings are compiled with -O0 -g0 (they are tiny; saves
# minutes).
#
# Usage: .ci/libtorch-check.sh [DIR]   (default target/libtorch-check; kept for incremental
# reruns: a few GB; delete it to reclaim the space)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mkdir -p "${1:-target/libtorch-check}" && cd "${1:-target/libtorch-check}" && pwd)
libtorch=$dir/libtorch

if [ ! -f "$libtorch/lib/libtorch_cpu.so" ]; then
  rm -rf "$dir/wheel" "$libtorch" "$libtorch.part"
  python3 -m pip download --quiet --no-cache-dir --no-deps --only-binary=:all: \
    --dest "$dir/wheel" torch==2.9.0 "nvidia-cuda-runtime-cu12==12.8.*" "nvidia-cuda-cupti-cu12==12.8.*"
  python3 - "$dir/wheel" "$libtorch.part" <<'PY'
import glob, os, re, sys, zipfile
wheel_dir, out = sys.argv[1], sys.argv[2]
runtime = {"libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libcudart.so.12", "libcupti.so.12"}
(wheel,) = glob.glob(os.path.join(wheel_dir, "torch-2.9.0-*.whl"))
os.makedirs(os.path.join(out, "lib"), exist_ok=True)
count = 0
for path in glob.glob(os.path.join(wheel_dir, "*.whl")):
    with zipfile.ZipFile(path) as z:
        for m in z.namelist():
            if m.endswith("/"):
                continue
            if path == wheel and m.startswith("torch/include/"):
                dest = os.path.join(out, m[len("torch/"):])
            elif os.path.basename(m) in runtime and "/lib/" in m:
                dest = os.path.join(out, "lib", os.path.basename(m))
            else:
                continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(m) as src, open(dest, "wb") as dst:
                dst.write(src.read())
            count += 1
        if path == wheel:
            version = re.search(r"__version__ = '([^']+)'", z.read("torch/version.py").decode()).group(1)
missing = runtime - set(os.listdir(os.path.join(out, "lib")))
assert not missing, f"not in the wheels: {missing}"
with open(os.path.join(out, "build-version"), "w") as f:
    f.write(version + "\n")
print(f"{count} files of torch {version} in {out}")
PY
  printf '/* libtorch.so without its CUDA half: links libtorch_cpu alone */\n' >"$libtorch.part/lib/stub.c"
  (cd "$libtorch.part/lib" && cc -shared -fPIC -o libtorch.so stub.c -Wl,--no-as-needed -L. \
    -ltorch_cpu -lc10 -Wl,-rpath,'$ORIGIN' && rm stub.c)
  rm -rf "$dir/wheel"
  mv "$libtorch.part" "$libtorch"
fi

export LIBTORCH="$libtorch" CXXFLAGS="-O0 -g0" CARGO_TARGET_DIR="$dir/target"
cargo clippy -p stilts -p stilts-trainer --features libtorch --all-targets -- -D warnings
LD_LIBRARY_PATH="$libtorch/lib" cargo test -p stilts-trainer --features libtorch --test fused

# One newer PyTorch, type-checked only: the version GPU hosts already have (the H200 check
# ran 2.11.0+cu130 builds). Headers from its wheel (~530 MB, deleted after); torch-sys's version
# check bypassed as README "GPU build" says to; same target directory, so only torch-sys and
# what depends on it are checked again.
newer=2.11.0
if [ ! -d "$dir/libtorch-$newer/include" ]; then
  rm -rf "$dir/wheel-$newer" "$dir/libtorch-$newer"
  python3 -m pip download --quiet --no-cache-dir --no-deps --only-binary=:all: \
    --dest "$dir/wheel-$newer" "torch==$newer"
  python3 - "$dir/wheel-$newer" "$dir/libtorch-$newer.part" <<'PY'
import glob, os, sys, zipfile
wheel_dir, out = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(wheel_dir, "torch-*.whl"))
with zipfile.ZipFile(wheel) as z:
    for m in z.namelist():
        if m.startswith("torch/include/") and not m.endswith("/"):
            dest = os.path.join(out, m[len("torch/"):])
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(m) as src, open(dest, "wb") as dst:
                dst.write(src.read())
os.makedirs(os.path.join(out, "lib"), exist_ok=True)
PY
  rm -rf "$dir/wheel-$newer"
  mv "$dir/libtorch-$newer.part" "$dir/libtorch-$newer"
fi
LIBTORCH="$dir/libtorch-$newer" LIBTORCH_BYPASS_VERSION_CHECK=1 \
  cargo clippy -p stilts -p stilts-trainer --features libtorch --all-targets -- -D warnings

# The bindings' objects are duplicates of the libtch.a archived beside them.
find "$dir/target" -path '*/build/torch-sys-*/out/*.o' -delete
du -sh "$dir"
