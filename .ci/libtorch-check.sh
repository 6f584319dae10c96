#!/usr/bin/env bash
# CI step: type-check (clippy, -D warnings) the `libtorch` cargo feature (burn-tch → tch →
# torch-sys), so the GPU build cannot rot, without installing PyTorch.
#
# torch-sys's build script compiles its C++ bindings against libtorch 2.9.0 headers even for
# `cargo check`, and its default download host is not reachable from CI. So this fetches the
# PyPI wheel torch==2.9.0 alone (`--no-deps`: ~900 MB instead of 6.8 GB with its nvidia
# wheels), unpacks only torch/include (~60 MB) as a minimal libtorch directory, writes the
# wheel's version into its `build-version` (torch-sys then verifies it is 2.9.0), deletes the
# wheel, and runs clippy with LIBTORCH pointing there and its own target directory. Nothing is
# linked (check only), so no libtorch .so files are needed. The C++ bindings are compiled with
# -O0 -g0: their objects are never linked here, and that saves minutes.
#
# Usage: .ci/libtorch-check.sh [DIR]   (default target/libtorch-check; kept for incremental
# reruns: ~1.5 GB; delete it to reclaim the space)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mkdir -p "${1:-target/libtorch-check}" && cd "${1:-target/libtorch-check}" && pwd)
libtorch=$dir/libtorch

if [ ! -f "$libtorch/build-version" ]; then
  rm -rf "$dir/wheel" "$libtorch" "$libtorch.part"
  python3 -m pip download --quiet --no-cache-dir --no-deps --only-binary=:all: \
    --dest "$dir/wheel" torch==2.9.0
  python3 - "$dir/wheel" "$libtorch.part" <<'PY'
import glob, os, re, sys, zipfile
wheel_dir, out = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(wheel_dir, "torch-2.9.0-*.whl"))
with zipfile.ZipFile(wheel) as z:
    members = [m for m in z.namelist() if m.startswith("torch/include/") and not m.endswith("/")]
    for m in members:
        dest = os.path.join(out, m[len("torch/"):])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with z.open(m) as src, open(dest, "wb") as dst:
            dst.write(src.read())
    version = re.search(r"__version__ = '([^']+)'", z.read("torch/version.py").decode()).group(1)
os.makedirs(os.path.join(out, "lib"), exist_ok=True)
with open(os.path.join(out, "build-version"), "w") as f:
    f.write(version + "\n")
print(f"{len(members)} headers of torch {version} in {out}")
PY
  rm -rf "$dir/wheel"
  mv "$libtorch.part" "$libtorch"
fi

LIBTORCH="$libtorch" CXXFLAGS="-O0 -g0" CARGO_TARGET_DIR="$dir/target" \
  cargo clippy -p stilts -p stilts-trainer --features libtorch --all-targets -- -D warnings

# The bindings' objects are duplicates of the libtch.a archived beside them.
find "$dir/target" -path '*/build/torch-sys-*/out/*.o' -delete
du -sh "$dir"
