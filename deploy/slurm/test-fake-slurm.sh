#!/bin/bash
# Runs stilts-workers.sbatch against stand-ins for srun, scancel, squeue, scontrol and stilts, and
# checks the drain path: one worker per GPU (CUDA_VISIBLE_DEVICES split per task), SIGTERM to the
# batch shell reaches every worker, the script waits for them, and requeues near the time limit.
# Used by deploy/validate.sh; needs bash only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
fake="$(mktemp -d)"
trap 'rm -rf "$fake"' EXIT
mkdir -p "$fake/bin"

cat > "$fake/bin/srun" <<'EOS'
#!/bin/bash
# stand-in: run the command once per task with SLURM_LOCALID set, like one job step
while [ "${1#--}" != "$1" ]; do shift; done
pids=()
for ((i = 0; i < ${SLURM_NTASKS:-1}; i++)); do
  SLURM_LOCALID=$i "$@" &
  pids+=($!)
  echo $! >> "$FAKE_DIR/pids"
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
exit $rc
EOS
cat > "$fake/bin/scancel" <<'EOS'
#!/bin/bash
echo "scancel $*" >> "$FAKE_DIR/log"
[ "$1" = "--signal=TERM" ] || exit 1
while read -r p; do kill -TERM "$p" 2>/dev/null || true; done < "$FAKE_DIR/pids"
EOS
cat > "$fake/bin/squeue" <<'EOS'
#!/bin/bash
echo "${FAKE_LEFT:-01:50}"
EOS
cat > "$fake/bin/scontrol" <<'EOS'
#!/bin/bash
echo "scontrol $*" >> "$FAKE_DIR/log"
EOS
cat > "$fake/bin/stilts" <<'EOS'
#!/bin/bash
# stand-in worker: note what it was given, drain on SIGTERM
echo "start gpu=${CUDA_VISIBLE_DEVICES:-} coord=$STILTS_COORDINATOR art=$STILTS_ARTIFACTS args=$*" >> "$FAKE_DIR/log"
trap 'echo "drained gpu=$CUDA_VISIBLE_DEVICES" >> "$FAKE_DIR/log"; exit 0' TERM
while :; do sleep 0.1; done
EOS
chmod +x "$fake/bin/"*

export FAKE_DIR="$fake" PATH="$fake/bin:$PATH" SLURM_JOB_ID=4242 SLURM_NTASKS=2 SLURMD_NODENAME=gpu01
export CUDA_VISIBLE_DEVICES=0,1

# run_case TIME_LEFT REQUEUE_EXPECTED(yes|no)
run_case() {
  export FAKE_LEFT="$1"
  : > "$fake/pids"; : > "$fake/log"
  bash "$here/stilts-workers.sbatch" http://head:50051 "$fake/artifacts" 2> "$fake/stderr" &
  local job=$!
  for _ in $(seq 100); do
    [ "$(grep -c '^start' "$fake/log")" = 2 ] && break
    sleep 0.1
  done
  kill -TERM "$job" || { echo "batch script exited early"; cat "$fake/stderr" "$fake/log"; exit 1; }
  wait "$job" || { echo "batch script failed"; cat "$fake/stderr" "$fake/log"; exit 1; }

  local fail=0
  check() { grep -q -- "$1" "$fake/log" || { echo "missing in log: $1"; fail=1; }; }
  check "start gpu=0 coord=http://head:50051 art=$fake/artifacts args=worker --slots 1 --backend libtorch-cuda --grace 90 --name gpu01-4242-gpu0"
  check "start gpu=1 "
  check "scancel --signal=TERM 4242"
  check "drained gpu=0"
  check "drained gpu=1"
  if [ "$2" = yes ]; then
    check "scontrol requeue 4242"
  elif grep -q "scontrol requeue" "$fake/log"; then
    echo "requeued with $1 left"; fail=1
  fi
  if [ "$fail" = 1 ]; then cat "$fake/log" "$fake/stderr"; exit 1; fi
}
run_case 01:50 yes        # the --signal warning before the time limit: drain, then requeue
run_case 2-03:00:00 no    # scancel / preemption with time left: drain, no requeue of our own
echo "slurm drain test: ok"
