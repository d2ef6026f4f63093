#!/usr/bin/env bash
# Every `vlmkit` command end to end on CUDA, then the test suite on CUDA: what CI (CPU only) cannot see.
# Run on a machine with a CUDA libtorch, from the repository root, after `npm run build`:
#   bash scripts/gpu_check.sh [work-folder]          (GPU machine: source .device/env.sh && npm run build:native first)
# Prints each command, its exit code and the report it wrote; exits non-zero when any step failed.
set -u
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d /tmp/vlmkit-gpu-check-XXXXXX)}
# DEVICE=cpu tries the commands on a machine without CUDA (and skips the CUDA test suite); SUITE=0 skips the suite
device=${DEVICE:-cuda}
mkdir -p "$work"
vlmkit() { node dist/src/cli/main.js "$@"; }
results=()

step() {
  local name=$1
  shift
  echo
  echo "=== $name: vlmkit $*"
  local started=$SECONDS
  vlmkit "$@" > "$work/$name.log" 2>&1
  local code=$?
  # the end of the log holds the held-out report (train / eval) or the answer (predict / generate)
  tail -n 22 "$work/$name.log"
  echo "=== $name: exit $code in $((SECONDS - started)) s"
  results+=("$(printf '%-22s exit %d  %4d s' "$name" "$code" "$((SECONDS - started))")")
}

vlmkit info || exit 1
node --input-type=module -e "
import { writeSyntheticDataset, writeTinyLlavaFolder, vocabularyOf, syntheticImageLabels, SYNTHETIC_QUESTION, SYNTHETIC_VIDEO_QUESTION, DIRECTIONS } from './dist/src/index.js';
writeSyntheticDataset('$work/data', { trainImages: 900, valImages: 225, trainClips: 240, valClips: 80, seed: 0 });
writeTinyLlavaFolder('$work/tiny-llava', { words: vocabularyOf([SYNTHETIC_QUESTION, SYNTHETIC_VIDEO_QUESTION, ...syntheticImageLabels().map((l) => 'a ' + l), ...DIRECTIONS]) });
" || exit 1
data=$work/data
model=(--model-config "$work/tiny-llava/config.json" --device "$device" --seed 0 --no-progress --overwrite)
images=(--train "$data/train.jsonl" --val "$data/val.jsonl" --labels "$data/labels.json" --prompt "What is in the image?")
head=(--head.pooling mean --batch_size 64 --lr 3e-3 --schedule cosine)

step train-head train "${model[@]}" "${images[@]}" "${head[@]}" --epochs 20 --output "$work/runs/head"
step train-lora train "${model[@]}" "${images[@]}" "${head[@]}" --epochs 4 --components.language.mode lora --components.language.target_modules q_proj,v_proj --output "$work/runs/lora"
step train-full-vision train "${model[@]}" "${images[@]}" "${head[@]}" --epochs 4 --components.vision.mode full --output "$work/runs/full-vision"
step train-lora-bf16 train "${model[@]}" "${images[@]}" "${head[@]}" --epochs 4 --autocast bf16 --components.language.mode lora --output "$work/runs/lora-bf16"
step train-bf16-weights train "${model[@]}" "${images[@]}" "${head[@]}" --epochs 4 --dtype bfloat16 --components.language.mode lora --output "$work/runs/bf16-weights"
step train-video-head train "${model[@]}" --train "$data/video/train.jsonl" --val "$data/video/val.jsonl" --labels "$data/video/labels.json" --prompt "Which way does the square move?" "${head[@]}" --epochs 20 --output "$work/runs/video-head"
step train-generation train "${model[@]}" --task generation --train "$data/sft_train.jsonl" --val "$data/sft_val.jsonl" --labels "$data/labels.json" --components.projector.mode full --components.language.mode lora --components.language.r 16 --components.language.target_modules all-linear --generation.max_new_tokens 6 --batch_size 32 --lr 3e-3 --epochs 3 --output "$work/runs/generation"
step train-resume-part train "${model[@]}" "${images[@]}" "${head[@]}" --components.language.mode lora --max_steps 10 --output "$work/runs/resumed"
step train-resume train --model-config "$work/tiny-llava/config.json" --device "$device" --seed 0 --no-progress "${images[@]}" "${head[@]}" --components.language.mode lora --max_steps 20 --resume --output "$work/runs/resumed"
for run in head lora full-vision generation video-head; do step "eval-$run" eval --run "$work/runs/$run"; done
first=$(node -e "const fs=require('fs');console.log(JSON.parse(fs.readFileSync('$data/val.jsonl','utf8').split('\n')[0]).image)")
clip=$(node -e "const fs=require('fs');console.log(JSON.parse(fs.readFileSync('$data/video/val.jsonl','utf8').split('\n')[0]).video)")
step predict-head predict --run "$work/runs/head" "$data/$first" --top-k 3
step predict-lora predict --run "$work/runs/lora" "$data/$first" --top-k 3
step predict-video predict --run "$work/runs/video-head" "$data/video/$clip" --top-k 2
step predict-generation predict --run "$work/runs/generation" "$data/$first"
step generate-run generate --run "$work/runs/generation" --image "$data/$first" --prompt "What is in the image?"
step generate-model generate --model-config "$work/tiny-llava/config.json" --image "$data/$first" --prompt "What is in the image?" --max-new-tokens 4
step export-merged export --run "$work/runs/lora" --output "$work/exported/lora-merged"
step export-adapter export --run "$work/runs/lora" --output "$work/exported/lora-adapter" --adapter-only
# transformers must load the merged folder with every weight in place (where Python with transformers is installed)
if python3 -c "import transformers" 2>/dev/null; then
  echo
  echo "=== transformers-loads-export: LlavaForConditionalGeneration.from_pretrained($work/exported/lora-merged)"
  python3 - "$work/exported/lora-merged" <<'PY'
import sys, torch
from safetensors.torch import load_file
from transformers import LlavaForConditionalGeneration
folder = sys.argv[1]
model, info = LlavaForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
assert not info["missing_keys"] and not info["unexpected_keys"], info
# what transformers writes back (its own checkpoint names) must be our file, name for name and value for value
import tempfile
saved = load_file(f"{folder}/model.safetensors")
with tempfile.TemporaryDirectory() as again:
    model.save_pretrained(again)
    theirs = load_file(f"{again}/model.safetensors")
assert sorted(theirs) == sorted(saved), (sorted(set(theirs) ^ set(saved)))[:10]
worst = max((theirs[k].float() - v.float()).abs().max().item() for k, v in saved.items())
print(f"transformers loaded {len(saved)} tensors, no missing or unexpected keys, and writes them back with the same names; largest difference {worst}")
assert worst == 0
PY
  code=$?
  echo "=== transformers-loads-export: exit $code"
  results+=("$(printf '%-22s exit %d  %4d s' "transformers-export" "$code" 0)")
fi

if [ "$device" = cuda ] && [ "${SUITE:-1}" != 0 ]; then
  echo
  echo "=== the test suite on CUDA (VLMKIT_TEST_DEVICE=cuda)"
  started=$SECONDS
  VLMKIT_TEST_DEVICE=cuda node --test --test-concurrency=1 dist/test/ > "$work/cuda-tests.log" 2>&1
  code=$?
  grep -E "^# (tests|pass|fail|skipped)" "$work/cuda-tests.log"
  grep -E "^not ok" "$work/cuda-tests.log" | head -20
  results+=("$(printf '%-22s exit %d  %4d s' "cuda-test-suite" "$code" "$((SECONDS - started))")")
fi

echo
echo "=== summary ($work)"
failed=0
for line in "${results[@]}"; do
  echo "$line"
  [[ $line == *"exit 0 "* ]] || failed=1
done
exit $failed
