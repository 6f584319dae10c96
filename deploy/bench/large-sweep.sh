#!/usr/bin/env bash
# A big sweep end to end with the real binary, as a user would run it: `stilts coordinator`
# (SQLite), one `stilts worker` with several slots running command jobs, the sweep submitted with
# `stilts sweep submit`, its dashboard JSON fetched every second until it finishes, then
# `stilts sweep results` and `stilts report`. Prints the figures (fetch times, lease expiries,
# rows, durations). A benchmark, not a test.
#
#   deploy/bench/large-sweep.sh [SEEDS] [SLOTS]
#
# Cells = 2 models × 5 intermediate (incl. none) × 10 targets × 40 languages × SEEDS (default 25:
# 100,000 cells, 5,200 jobs); SLOTS defaults to 8. STILTS names the binary (default
# target/release/stilts, else target/debug/stilts).
set -euo pipefail
cd "$(dirname "$0")/../.."
seeds="${1:-25}"
slots="${2:-8}"
stilts="${STILTS:-}"
if [ -z "$stilts" ]; then
  if [ -x target/release/stilts ]; then stilts=target/release/stilts; else stilts=target/debug/stilts; fi
fi
stilts="$(realpath "$stilts")"
dir="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port="$(free_port)"
http="$(free_port)"
url="http://127.0.0.1:$port"

langs="$(python3 -c 'print(", ".join(f"\"l{i:02}\"" for i in range(40)))')"
targets="$(python3 -c 'print(", ".join(f"\"t{i}\"" for i in range(10)))')"
seed_list="$(python3 -c "print(', '.join(str(s) for s in range(1, $seeds + 1)))")"
cat >"$dir/big.toml" <<EOF
[sweep]
name = "big"
seeds = [$seed_list]

[models]
alpha = "models/alpha"
beta = "models/beta"

[grid]
intermediate = ["none", "i1", "i2", "i3", "i4"]
target = [$targets]
languages = [$langs]

[executor]
kind = "command"
intermediate = "mkdir -p {output_dir} && echo ckpt > {output_dir}/ckpt"
target = "mkdir -p {output_dir} && echo ckpt > {output_dir}/ckpt"
evaluate = '''printf '{{' > {metrics_file} && sep= && for l in {languages_space}; do printf '%s"%s": {{"accuracy": 7%s.5}}' "\$sep" "\$l" {seed} >> {metrics_file}; sep=', '; done && printf '}}\n' >> {metrics_file}'''
EOF

"$stilts" coordinator --listen "127.0.0.1:$port" --http "127.0.0.1:$http" --state-dir "$dir/coord" \
  --artifacts "$dir/artifacts" >"$dir/coordinator.log" 2>&1 &
"$stilts" worker --coordinator "$url" --slots "$slots" --artifacts "$dir/artifacts" >"$dir/worker.log" 2>&1 &
for _ in $(seq 100); do "$stilts" health --coordinator "$url" >/dev/null 2>&1 && break; sleep 0.2; done

start=$(date +%s.%N)
"$stilts" sweep submit "$dir/big.toml" --coordinator "$url"
submitted=$(date +%s.%N)
fetches="$dir/fetches.txt"
while :; do
  t=$(curl -s -o "$dir/sweep.json" -w '%{time_total}' "http://127.0.0.1:$http/api/sweeps/big")
  echo "$t" >>"$fetches"
  if python3 -c "import json,sys; sys.exit(0 if json.load(open('$dir/sweep.json')).get('finished') else 1)" 2>/dev/null; then break; fi
  sleep 1
done
finished=$(date +%s.%N)
rows=$("$stilts" sweep results big --format csv --coordinator "$url" | tail -n +2 | wc -l)
results_done=$(date +%s.%N)
"$stilts" report big --coordinator "$url" --out "$dir/report" >/dev/null
report_done=$(date +%s.%N)
expiries=$(curl -s "http://127.0.0.1:$http/metrics" | grep '^stilts_lease_expiries_total' || echo "stilts_lease_expiries_total ?")
cells=$(python3 -c "import json; d=json.load(open('$dir/sweep.json')); print(d['cells_total'], d['counts'])")

echo "binary: $stilts"
echo "cells (total, by state): $cells"
python3 - "$fetches" "$start" "$submitted" "$finished" "$results_done" "$report_done" "$rows" <<'EOF'
import sys
fetches, start, submitted, finished, results_done, report_done = sys.argv[1], *map(float, sys.argv[2:7])
rows = sys.argv[7]
t = sorted(float(x) for x in open(fetches))
p = lambda q: t[min(len(t) - 1, round(q * (len(t) - 1)))]
print(f"submit: {submitted - start:.1f} s; run to finished: {finished - submitted:.1f} s")
print(f"dashboard JSON fetches: n={len(t)} p50={p(0.5)*1e3:.0f} ms p99={p(0.99)*1e3:.0f} ms max={t[-1]*1e3:.0f} ms")
print(f"stilts sweep results: {rows} rows in {results_done - finished:.1f} s")
print(f"stilts report: {report_done - results_done:.1f} s")
EOF
echo "$expiries"
