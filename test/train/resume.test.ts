// Exact resume: a run stopped part-way (mid-epoch, with dropout, gradient accumulation, a cosine schedule with
// warmup and a shuffled data order) and resumed from checkpoints/last ends with the same weights and optimizer
// state, bit for bit, as the same run never interrupted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dispose, getRngState, manualSeed } from "../../src/torch/index.js";
import { Trainer, epochOrder, readMetrics, type TrainOptions, type TrainerStateFile } from "../../src/train/index.js";
import { ClassifierTask, classSource, makeClassData, temporaryRunDir } from "./helpers.js";

const train = classSource(makeClassData(23, 11));
const evalData = classSource(makeClassData(12, 12));

const base: Omit<TrainOptions, "outputDir"> = {
  epochs: 3, batchSize: 5, gradAccumulation: 2, lr: 0.02, schedule: "cosine", warmupSteps: 2, maxGradNorm: 1,
  progress: false, log: () => {},
};

async function run(initSeed: number, options: Partial<TrainOptions> & { outputDir: string }) {
  const task = new ClassifierTask(initSeed);
  const trainer = new Trainer(task, train, evalData, { ...base, ...options });
  const result = await trainer.fit();
  return { task, trainer, result };
}

function assertSameState(a: Awaited<ReturnType<typeof run>>, b: Awaited<ReturnType<typeof run>>) {
  for (const [name, t] of a.task.model.stateDict()) {
    assert.ok(t.equal(b.task.model.stateDict().get(name)!), `weight ${name} differs from the uninterrupted run`);
  }
  const [sa, sb] = [a.trainer.optimizer.stateDict(), b.trainer.optimizer.stateDict()];
  assert.deepEqual(Object.keys(sb.tensors).sort(), Object.keys(sa.tensors).sort());
  for (const key of Object.keys(sa.tensors)) assert.ok(sa.tensors[key].equal(sb.tensors[key]), `optimizer state ${key} differs`);
  assert.deepEqual(JSON.parse(JSON.stringify(sb.meta)), JSON.parse(JSON.stringify(sa.meta)));
  dispose([sa.tensors, sb.tensors]);
}

test("data order: a seeded permutation per epoch, the same every time, different across epochs and seeds", () => {
  const order = epochOrder(50, 42, 0);
  assert.deepEqual([...order].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  assert.deepEqual(epochOrder(50, 42, 0), order);
  assert.notDeepEqual(epochOrder(50, 42, 1), order);
  assert.notDeepEqual(epochOrder(50, 43, 0), order);
  assert.deepEqual(epochOrder(5, 42, 3, false), [0, 1, 2, 3, 4]);
});

test("resume: stopped after 4 of 9 steps (mid-epoch) and resumed = uninterrupted, bit for bit", async () => {
  // 23 samples, batch 5 -> 5 micro-batches, accumulation 2 -> steps of 2, 2, 1 micro-batches: 3 steps/epoch.
  const straight = await run(1, { outputDir: temporaryRunDir("straight") });
  assert.equal(straight.result.steps, 9);

  const outputDir = temporaryRunDir("resumed");
  const first = await run(1, { outputDir, stopAfterSteps: 4 });
  assert.equal(first.result.stopReason, "stopped");
  const saved = JSON.parse(readFileSync(join(outputDir, "checkpoints/last/trainer_state.json"), "utf8")) as TrainerStateFile;
  assert.deepEqual([saved.step, saved.epoch, saved.positionInEpoch], [4, 1, 2]);

  // Another initialisation and another RNG state: everything must come from the checkpoint.
  manualSeed(12345);
  const second = await run(2, { outputDir, resume: true });
  assert.equal(second.result.resumedFromStep, 4);
  assert.equal(second.result.stopReason, "completed");
  assert.equal(second.result.steps, 9);
  assertSameState(straight, second);
  // Evaluations after the resume saw the same model as the uninterrupted run's.
  assert.deepEqual(second.result.evals, straight.result.evals.filter((e) => e.step > 4));
  assert.deepEqual(second.result.best, { ...straight.result.best!, dir: join(outputDir, "checkpoints/best") });
  // metrics.jsonl holds each step once: what the first run logged after its checkpoint (none here) is dropped.
  const steps = readMetrics(join(outputDir, "metrics.jsonl")).filter((r) => r.type === "eval").map((r) => r.step);
  assert.deepEqual(steps, [3, 6, 9]);
});

test("resume: a run ended by maxSteps continues to a larger maxSteps (constant schedule) = uninterrupted", async () => {
  const options = { schedule: "constant" as const, warmupSteps: 0, gradAccumulation: 1, evalEvery: 2 };
  const straight = await run(1, { ...options, maxSteps: 11, outputDir: temporaryRunDir("max-straight") });
  const outputDir = temporaryRunDir("max-resumed");
  const first = await run(1, { ...options, maxSteps: 7, outputDir });
  assert.equal(first.result.stopReason, "completed");
  const second = await run(3, { ...options, maxSteps: 11, outputDir, resume: true });
  assert.equal(second.result.steps, 11);
  assertSameState(straight, second);
});

test("resume restores the RNG: the same checkpoint with another generator state ends elsewhere (dropout draws differ)", async () => {
  const straight = await run(1, { outputDir: temporaryRunDir("rng-straight") });
  const outputDir = temporaryRunDir("rng");
  await run(1, { outputDir, stopAfterSteps: 4 });
  manualSeed(999);
  writeFileSync(join(outputDir, "checkpoints/last/rng_cpu.bin"), getRngState("cpu"));
  const second = await run(1, { outputDir, resume: true });
  const differs = [...straight.task.model.stateDict()].some(([name, t]) => !t.equal(second.task.model.stateDict().get(name)!));
  assert.ok(differs, "dropout draws did not matter: this test could not detect a missing RNG restore");
});

test("resume: an abort signal stops after the current step and saves; a crash between the checkpoint renames is recovered", async () => {
  const straight = await run(1, { outputDir: temporaryRunDir("abort-straight") });
  const outputDir = temporaryRunDir("abort");
  const controller = new AbortController();
  const first = await run(1, { outputDir, signal: controller.signal, onStep: (info) => info.step === 5 && controller.abort() });
  assert.equal(first.result.stopReason, "interrupted");
  assert.equal(first.result.steps, 5);
  // As if the process died after moving the old checkpoint aside and before renaming the new one into place.
  renameSync(join(outputDir, "checkpoints/last"), join(outputDir, "checkpoints/last.old-4242"));
  const second = await run(2, { outputDir, resume: true });
  assert.equal(second.result.resumedFromStep, 5);
  assert.ok(!existsSync(join(outputDir, "checkpoints/last.old-4242")));
  assertSameState(straight, second);

  // Resuming a finished run does nothing; a fresh run there is refused unless asked to overwrite.
  const again = await run(2, { outputDir, resume: true });
  assert.deepEqual([again.result.steps, again.result.stopReason, again.result.evals.length], [9, "completed", 0]);
  await assert.rejects(run(1, { outputDir }), /already holds a training run.*resume: true.*overwrite: true/s);
  await assert.rejects(run(1, { outputDir, resume: true, seed: 7 }), /trained with seed 42, this run has 7/);
  const over = await run(1, { outputDir, overwrite: true, maxSteps: 2 });
  assert.equal(over.result.resumedFromStep, null);
  assert.equal(readMetrics(join(outputDir, "metrics.jsonl")).filter((r) => r.type === "train").at(-1)!.step, 2);
});
