#!/usr/bin/env bash
# Adaptation benchmarks on the LLaVA-1.5-7B-shaped checkpoint, transformers + PEFT and vlmkit, in one call on the
# GPU machine. Usage: bash bench/run_adapt7b.sh [out.jsonl] [lora|head|all]   (~15 GB of disk under /tmp)
set -euo pipefail
out=${1:-/tmp/bench_adapt7b.jsonl}
which=${2:-all}
dir=/tmp/llava7b-random
: > "$out"
[ -f "$dir/config.json" ] || python3 bench/llava7b_transformers.py make "$dir"
for mode in lora head; do
  [ "$which" = all ] || [ "$which" = "$mode" ] || continue
  python3 bench/adapt7b_transformers.py "$mode" "$dir" | tee -a "$out"
  node dist/bench/adapt7b.js "$mode" "$dir" | tee -a "$out"
done
node bench/compare.mjs "$out"
