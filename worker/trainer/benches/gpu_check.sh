#!/usr/bin/env bash
# The fused layers and bf16 on a GPU machine: stilts' train step with the fused LibTorch layers
# on and off (STILTS_FUSED=off), fp32 and bf16, batch 32, sequence 128, next to PyTorch on the
# same GPU. Runs inside the `.gpu/` directory that ../shared/gpu/build.sh prepares (copy this
# file there before carrying it): `bash .gpu/gpu_check.sh 2>&1 | tee $OUT/fused.log`, about 3
# minutes on an H200.
set -u
G=$(cd "$(dirname "$0")" && pwd); cd "$G"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')/lib
[ -x train_step_bench ] || { python3 -c "import lzma,shutil;shutil.copyfileobj(lzma.open('train_step_bench.xz'),open('train_step_bench','wb'))" && chmod +x train_step_bench; }
echo "== stilts train step, batch 32, seq 128 (fwd + bwd + AdamW), median ms"
for m in minilm bert-base; do
  for p in fp32 bf16; do
    for fused in off on; do
      STILTS_FUSED=$fused timeout 120 ./train_step_bench $m --backend libtorch-cuda --batch 32 \
        --seq 128 --steps 20 --precision $p 2>&1 | tail -1
    done
  done
done
echo "== per-op cost: MiniLM's operations on tiny tensors"
for fused in off on; do
  STILTS_FUSED=$fused timeout 60 ./train_step_bench ops --backend libtorch-cuda --batch 2 --seq 8 \
    --steps 50 2>&1 | tail -1
done
[ -f torch_bench.py ] && PYTHONUNBUFFERED=1 timeout 240 python3 torch_bench.py --batch 32 --seq 128 \
  --steps 10 2>&1 | grep -v Warning
