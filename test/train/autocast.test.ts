// Mixed precision: autocast applies on CUDA only (a CPU run says so and computes exactly as without it); fp16 adds
// dynamic loss scaling. The CUDA tests run where a GPU is present and are skipped elsewhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { cuda, dispose, tensor } from "../../src/torch/index.js";
import { GradScaler, Trainer, readMetrics, type TrainOptions } from "../../src/train/index.js";
import { ClassifierTask, classSource, makeClassData, temporaryRunDir } from "./helpers.js";

const noCuda = !cuda.isAvailable() && "needs CUDA";

test("GradScaler: unscale divides every gradient; overflow halves the scale, growthInterval good steps double it", () => {
  const scaler = new GradScaler(8, 2);
  const p = tensor([1, 2], { dtype: "float32" }).requiresGrad_().keep();
  const grad = tensor([8, -16]);
  p.grad = grad;
  grad.dispose();
  scaler.unscale([p]);
  assert.deepEqual(p.grad!.dataAsNumbers(), [1, -2]);
  const scales: number[] = [];
  for (const overflow of [false, true, false, false, false, true]) {
    scaler.update(overflow);
    scales.push(scaler.scale);
  }
  assert.deepEqual(scales, [8, 4, 4, 8, 8, 4]);
  assert.deepEqual(scaler.stateDict(), { scale: 4, goodSteps: 0 });
  dispose(p);
});

async function run(options: Partial<TrainOptions>, device = "cpu", initSeed = 1) {
  const task = new ClassifierTask(initSeed, { device });
  const lines: string[] = [];
  const outputDir = options.outputDir ?? temporaryRunDir("autocast");
  const result = await new Trainer(task, classSource(makeClassData(32, 3), device), classSource(makeClassData(16, 4), device), {
    epochs: 3, batchSize: 8, lr: 0.02, log: (l) => lines.push(l), ...options, outputDir,
  }).fit();
  return { task, lines, result, outputDir };
}

test("CPU: autocast bf16 is ignored with a note, and the run is bit-identical to one without it", async () => {
  const plain = await run({});
  const requested = await run({ autocast: "bf16" });
  assert.ok(requested.lines.some((l) => /autocast bf16 applies on CUDA only; the parameters are on cpu/.test(l)));
  for (const [name, t] of plain.task.model.stateDict()) assert.ok(t.equal(requested.task.model.stateDict().get(name)!), name);
});

test("CUDA: bf16 autocast trains (loss falls) and resumes exactly, CUDA generator included", { skip: noCuda }, async () => {
  const straight = await run({ autocast: "bf16", logEvery: 1 }, "cuda");
  const losses = readMetrics(join(straight.outputDir, "metrics.jsonl")).filter((r) => r.type === "train").map((r) => r.loss as number);
  assert.ok(losses.every(Number.isFinite) && losses.at(-1)! < losses[0], `losses ${losses.join(", ")}`);
  const outputDir = temporaryRunDir("autocast-resume");
  await run({ autocast: "bf16", logEvery: 1, stopAfterSteps: 5, outputDir }, "cuda");
  const resumed = await run({ autocast: "bf16", logEvery: 1, resume: true, outputDir }, "cuda", 2);
  for (const [name, t] of straight.task.model.stateDict()) assert.ok(t.equal(resumed.task.model.stateDict().get(name)!), name);
});

test("CUDA: fp16 autocast scales the loss (loss_scale logged) and overflow skips are not NaN-guard events", { skip: noCuda }, async () => {
  const { result, outputDir } = await run({ autocast: "fp16", logEvery: 1 }, "cuda");
  assert.equal(result.skippedSteps, 0);
  const records = readMetrics(join(outputDir, "metrics.jsonl")).filter((r) => r.type === "train");
  assert.ok(records.every((r) => typeof r.loss_scale === "number" && (r.loss_scale as number) > 0));
});
