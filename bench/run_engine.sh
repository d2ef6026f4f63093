#!/usr/bin/env bash
# Runs the tensor-engine benchmarks, vlmkit and PyTorch, in one call on the GPU machine.
# Usage (GPU machine, after `npm run build:native` and with dist/ compiled): bash bench/run_engine.sh [out.jsonl]
set -euo pipefail
out=${1:-/tmp/bench_engine.jsonl}
: > "$out"
for name in matmul smallOps mlp sdpa; do
  node dist/bench/engine.js "$name" | tee -a "$out"
  python3 bench/engine_torch.py "$name" | tee -a "$out"
done
node bench/compare.mjs "$out"
