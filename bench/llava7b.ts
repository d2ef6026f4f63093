// LLaVA-1.5-7B-shaped benchmark, vlmkit side (bench/llava7b_transformers.py is the transformers side and
// makes the random bf16 checkpoint both load). Usage: node dist/bench/llava7b.js DIR
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { cuda, full, noGrad, tidy, readSafetensors, F } from "../src/index.js";
import { device, llavaRows, llavaShape, report, sync } from "./llava_bench.js";
import { loadPretrained } from "../src/models/index.js";
import { generate } from "../src/models/generation.js";
import type { LlavaForConditionalGeneration } from "../src/models/llava/model.js";

const folder = process.argv[2];
const shape = llavaShape(folder);
const inputs = (batch: number, textTokens: number) => llavaRows(shape, batch, textTokens, 0, "bfloat16");

const peakHostGiB = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 2 ** 20;
const checkpointGiB = readdirSync(folder).filter((f) => f.endsWith(".safetensors")).reduce((sum, f) => sum + statSync(join(folder, f)).size, 0) / 2 ** 30;

let start = performance.now();
const model = await loadPretrained<LlavaForConditionalGeneration>(folder, { device, dtype: "bf16" });
sync();
report("llava7b_load", { seconds: (performance.now() - start) / 1000, peakHostGiB: peakHostGiB(), checkpointGiB, peakHostRatio: peakHostGiB() / checkpointGiB });

{
  const { ids, pixels } = inputs(16, 128);
  const mask = full(ids.shape, 1, { dtype: "int64", device });
  const forward = () => noGrad(() => tidy(() => { model.model.forward({ input_ids: ids, pixel_values: pixels, attention_mask: mask }).last_hidden_state; }));
  for (let i = 0; i < 2; i++) forward();
  sync();
  const runs = 5;
  start = performance.now();
  for (let i = 0; i < runs; i++) forward();
  sync();
  const t = (performance.now() - start) / 1000 / runs;
  report("llava7b_forward_b16", { seconds: t, tokensPerSecond: ids.numel() / t });
  ids.dispose(); pixels.dispose(); mask.dispose();
}

// bf16 parity with transformers on the same checkpoint and input (its logits written by llava7b_transformers.py).
const theirsPath = "/tmp/llava7b_transformers_logits.safetensors";
if (existsSync(theirsPath)) {
  const figures = noGrad(() => tidy(() => {
    // the same input ids and pixels as transformers saw, with its logits
    const saved = readSafetensors(theirsPath, { device });
    const ids = saved.get("input_ids")!;
    const ours = model.forward({ input_ids: ids, pixel_values: saved.get("pixel_values")!, attention_mask: full(ids.shape, 1, { dtype: "int64", device }) }).logits.float();
    const theirs = saved.get("logits")!;
    const cosine = F.cosineSimilarity(ours, theirs, -1);
    const agree = ours.argmax(-1).eq(theirs.argmax(-1)).float().mean().item();
    // positions whose top-2 logits differ by more than bf16's resolution at their magnitude
    const top2 = theirs.topk(2, -1).values;
    const margin = top2.select(-1, 0).sub(top2.select(-1, 1));
    const clear = margin.gt(top2.select(-1, 0).abs().mul(1 / 128));
    const agreeClear = ours.argmax(-1).eq(theirs.argmax(-1)).logicalAnd(clear).float().sum().item() / Math.max(1, clear.float().sum().item());
    return { argmaxAgreement: agree, argmaxAgreementClearMargin: agreeClear, clearPositions: clear.float().sum().item(), positions: clear.numel(), cosineMean: cosine.mean().item(), cosineMin: cosine.min().item() };
  }));
  report("llava7b_bf16_parity", figures);
}

const newTokens = 64;
for (const batch of [1, 8]) {
  const { ids, pixels } = inputs(batch, 16);
  const run = (maxNew: number) => generate(model, { input_ids: ids, max_new_tokens: maxNew, eos_token_id: [], pad_token_id: 0, model_inputs: { pixel_values: pixels } });
  run(4).dispose();
  sync();
  start = performance.now();
  const out = run(newTokens);
  sync();
  const t = (performance.now() - start) / 1000;
  if (out.shape[1] !== ids.shape[1] + newTokens) throw new Error(`expected ${newTokens} new tokens, got ${out.shape[1] - ids.shape[1]}`);
  report(`llava7b_greedy_b${batch}`, { seconds: t, tokensPerSecond: (batch * newTokens) / t });
  out.dispose(); ids.dispose(); pixels.dispose();
}
if (device.startsWith("cuda")) report("llava7b_peak_gpu", { peakGiB: cuda.maxMemoryAllocated() / 2 ** 30 });
