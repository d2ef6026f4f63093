#!/usr/bin/env bash
# LLaVA-1.5-7B-shaped benchmarks and bf16 parity, transformers and vlmkit, in one call on the GPU machine.
# Usage: bash bench/run_llava7b.sh [out.jsonl]   (needs ~15 GB of disk under /tmp for the random checkpoint)
set -euo pipefail
out=${1:-/tmp/bench_llava7b.jsonl}
dir=/tmp/llava7b-random
: > "$out"
[ -f "$dir/config.json" ] || python3 bench/llava7b_transformers.py make "$dir"
python3 bench/llava7b_transformers.py bench "$dir" | tee -a "$out"
node dist/bench/llava7b.js "$dir" | tee -a "$out"
node bench/compare.mjs "$out"
