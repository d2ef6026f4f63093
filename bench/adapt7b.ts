// Adaptation benchmarks on the LLaVA-1.5-7B-shaped checkpoint, vlmkit side (bench/adapt7b_transformers.py is the
// transformers + PEFT side; bench/run_adapt7b.sh runs both in one call). Usage: node dist/bench/adapt7b.js lora|head DIR
//   lora: LoRA SFT steps (r 16 on the language model's q,k,v,o,gate,up,down; batch 4 × (576 image + 128 text)
//         tokens; bf16 weights, bf16 autocast, fused AdamW): tokens/s and peak GPU memory.
//   head: a classification head trained 10 epochs over 2,000 samples on the frozen backbone, features computed once
//         and cached, against the loop that re-runs the backbone every epoch (timed for 2 epochs).
import { AdamW, F, arange, autocast, cat, cuda, full, keep, manualSeed, noGrad, randint, randperm, tidy, type Tensor } from "../src/index.js";
import { device, llavaRows, llavaShape, onCuda, report, sync } from "./llava_bench.js";
import { loadPretrained } from "../src/models/index.js";
import { adaptModel } from "../src/adapt/index.js";
import { ClassificationHead, poolHidden } from "../src/tasks/classification_head.js";
import type { LlavaForConditionalGeneration } from "../src/models/llava/model.js";

const [mode, folder] = process.argv.slice(2);
const shape = llavaShape(folder);
const config = shape.config;
const small = !onCuda; // the CPU check runs a few samples only
const LORA = { batch: 4, text: 128, warmup: small ? 1 : 3, steps: small ? 2 : 10 };
const HEAD = { samples: small ? 48 : 2000, classes: 10, text: 16, batch: 32, epochs: 10, rerunEpochs: 2 };

const bf16 = <T>(fn: () => T): T => (onCuda ? autocast("cuda", "bf16", fn) : fn());
const rows = (batch: number, textTokens: number, seed: number) => llavaRows(shape, batch, textTokens, seed, onCuda ? "bfloat16" : "float32");

const model = await loadPretrained<LlavaForConditionalGeneration>(folder, { device, dtype: onCuda ? "bf16" : "float32" });
sync();

if (mode === "lora") {
  const adapted = adaptModel(model, {
    language: { mode: "lora", r: 16, alpha: 32, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] },
  });
  console.error(adapted.trainableLine);
  model.train();
  const optimizer = new AdamW(adapted.trainable.map(([, p]) => p), { lr: 1e-4 });
  const { ids, pixels } = rows(LORA.batch, LORA.text, 0);
  const mask = full(ids.shape, 1, { dtype: "int64", device });
  const labels = keep(ids.maskedFill(ids.eq(shape.imageToken), -100));
  if (onCuda) cuda.resetPeakMemoryStats();
  let loss = 0;
  const step = () => tidy(() => {
    const out = bf16(() => model.forward({ input_ids: ids, pixel_values: pixels, attention_mask: mask, labels }).loss!);
    out.backward();
    optimizer.step();
    optimizer.zeroGrad();
    return out;
  });
  for (let i = 0; i < LORA.warmup; i++) step().dispose();
  sync();
  const start = performance.now();
  for (let i = 0; i < LORA.steps; i++) {
    const out = step();
    if (i === LORA.steps - 1) loss = out.item();
    out.dispose();
  }
  sync();
  const seconds = (performance.now() - start) / 1000 / LORA.steps;
  const trainable = adapted.trainable.reduce((n, [, p]) => n + p.numel(), 0);
  report("lora_sft_7b", { secondsPerStep: seconds, tokensPerSecond: ids.numel() / seconds, peakGiB: onCuda ? cuda.maxMemoryAllocated() / 2 ** 30 : 0, trainable, loss });
} else if (mode === "head") {
  model.freeze();
  model.eval();
  const hidden: number = config.text_config.hidden_size;
  const { ids, pixels } = rows(HEAD.samples, HEAD.text, 1);
  manualSeed(2);
  const targets = randint(0, HEAD.classes, [HEAD.samples], { device });
  /** Pooled last-token features [n, hidden] (float32) of the samples at `index`, the backbone in no-grad. */
  const backboneFeatures = (index: Tensor): Tensor =>
    noGrad(() => tidy(() => {
      const rowIds = ids.indexSelect(0, index);
      const hiddenStates = bf16(() => model.model.forward({ input_ids: rowIds, pixel_values: pixels.indexSelect(0, index) }).last_hidden_state);
      return poolHidden(hiddenStates, null, "last").float();
    }));
  /** Trains a fresh head for `epochs` epochs; features(index) gives each batch's inputs. Returns seconds and the last loss. */
  const trainHead = (epochs: number, features: (index: Tensor) => Tensor): { seconds: number; loss: number } => {
    manualSeed(0);
    const head = new ClassificationHead({ inputSize: hidden, numClasses: HEAD.classes, hiddenSize: 512 }).to(device);
    const optimizer = new AdamW(head.parameters(), { lr: 1e-3 });
    let loss = 0;
    sync();
    const start = performance.now();
    for (let epoch = 0; epoch < epochs; epoch++) {
      const order = keep(randperm(HEAD.samples, { device }));
      for (let s = 0; s < HEAD.samples; s += HEAD.batch) {
        tidy(() => {
          const index = order.slice(0, s, Math.min(s + HEAD.batch, HEAD.samples));
          const out = F.crossEntropy(head.forward(features(index)), targets.indexSelect(0, index));
          out.backward();
          optimizer.step();
          optimizer.zeroGrad();
          if (s + HEAD.batch >= HEAD.samples && epoch === epochs - 1) loss = out.item();
        });
      }
      order.dispose();
    }
    sync();
    return { seconds: (performance.now() - start) / 1000, loss };
  };

  // Cached: one pass of the backbone over every sample, then epochs over the stored features.
  sync();
  const start = performance.now();
  const all = Array.from({ length: Math.ceil(HEAD.samples / HEAD.batch) }, (_, b) =>
    tidy(() => backboneFeatures(arange(b * HEAD.batch, Math.min((b + 1) * HEAD.batch, HEAD.samples), 1, { device }))),
  );
  const cache = keep(cat(all, 0));
  all.forEach((t) => t.dispose());
  sync();
  const featureSeconds = (performance.now() - start) / 1000;
  const cached = trainHead(HEAD.epochs, (index) => cache.indexSelect(0, index));
  report("head_cached_features", { epochs: HEAD.epochs, samples: HEAD.samples, featureSeconds, headSeconds: cached.seconds, seconds10Epochs: featureSeconds + cached.seconds, loss: cached.loss });

  const rerun = trainHead(HEAD.rerunEpochs, backboneFeatures);
  report("head_rerun_backbone", { epochsRun: HEAD.rerunEpochs, secondsPerEpoch: rerun.seconds / HEAD.rerunEpochs, seconds10Epochs: (rerun.seconds / HEAD.rerunEpochs) * HEAD.epochs, samples: HEAD.samples, loss: rerun.loss });
} else {
  throw new Error(`usage: node dist/bench/adapt7b.js lora|head DIR (got mode '${mode}')`);
}
if (onCuda) report(`adapt7b_${mode}_peak_gpu`, { peakGiB: cuda.maxMemoryAllocated() / 2 ** 30 });
