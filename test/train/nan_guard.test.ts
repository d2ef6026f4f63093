// The NaN/inf guard: a step whose loss is not finite makes no update, zeroes the gradients, lowers the lr for the
// rest of the run and warns; K such steps in a row abort with an error that says what to do.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Trainer, readMetrics, type StepInfo, type TrainOptions } from "../../src/train/index.js";
import { ClassifierTask, classSource, makeClassData, snapshot, temporaryRunDir } from "./helpers.js";

const data = classSource(makeClassData(24, 3));

function setup(poisoned: Record<number, number>, options: Partial<TrainOptions> = {}) {
  const task = new ClassifierTask(1);
  for (const [call, factor] of Object.entries(poisoned)) task.poisonedCalls.set(Number(call), factor);
  const steps: StepInfo[] = [];
  const weightsAfter: Map<string, number[]>[] = [];
  const gradsLeft: number[] = [];
  const lines: string[] = [];
  const outputDir = temporaryRunDir("nan");
  const trainer = new Trainer(task, data, null, {
    batchSize: 8, lr: 0.01, schedule: "constant", maxSteps: 6, outputDir, log: (line) => lines.push(line),
    nanGuard: { maxConsecutive: 3, lrFactor: 0.5 }, logEvery: 1,
    onStep: (info) => {
      steps.push(info);
      weightsAfter.push(snapshot(task.model));
      gradsLeft.push(task.model.parameters().filter((p) => {
        const grad = p.grad;
        grad?.dispose();
        return grad !== null;
      }).length);
    },
    ...options,
  });
  return { task, trainer, steps, weightsAfter, gradsLeft, lines, outputDir, initial: snapshot(task.model) };
}

test("a NaN loss skips the step (weights unchanged), halves the lr from then on, warns and logs a skip record", async () => {
  // Batch 8, no accumulation: loss call i is step i + 1. Steps 3 (NaN) and 5 (+inf) are poisoned.
  const run = setup({ 2: NaN, 4: Infinity });
  const result = await run.trainer.fit();
  assert.equal(result.stopReason, "completed");
  assert.equal(result.skippedSteps, 2);
  assert.deepEqual(run.steps.map((s) => s.skipped), [null, null, "loss is NaN", null, "loss is Infinity", null]);
  assert.deepEqual(run.weightsAfter[2], run.weightsAfter[1], "the NaN step changed the weights");
  assert.deepEqual(run.weightsAfter[4], run.weightsAfter[3], "the inf step changed the weights");
  assert.notDeepEqual(run.weightsAfter[3], run.weightsAfter[2], "a good step after the skip must update");
  assert.deepEqual(run.steps.map((s) => s.lr), [0.01, 0.01, 0.01, 0.005, 0.005, 0.0025]);
  for (const [, values] of run.weightsAfter[5]) assert.ok(values.every(Number.isFinite));
  assert.equal(run.lines.filter((l) => l.startsWith("warning: step")).length, 2);
  assert.match(run.lines.find((l) => l.startsWith("warning: step 3"))!, /loss is NaN; step skipped, base lr lowered to 5\.000e-3 \(1\/3 in a row/);
  const skips = readMetrics(join(run.outputDir, "metrics.jsonl")).filter((r) => r.type === "skip");
  assert.deepEqual(skips.map((r) => [r.step, r.reason, r.base_lr, r.consecutive]), [[3, "loss is NaN", 0.005, 1], [5, "loss is Infinity", 0.0025, 1]]);
});

test("with gradient accumulation, one bad micro-batch skips the whole step", async () => {
  // Batch 4 x 2: loss calls 0,1 are step 1; call 3 is poisoned, so step 2 skips (call 2 already did backward).
  const run = setup({ 3: NaN }, { batchSize: 4, gradAccumulation: 2, maxSteps: 3 });
  await run.trainer.fit();
  assert.deepEqual(run.steps.map((s) => s.skipped), [null, "loss is NaN", null]);
  assert.deepEqual(run.weightsAfter[1], run.weightsAfter[0]);
  // The gradient call 2 accumulated is dropped, so nothing leaks into step 3.
  assert.deepEqual(run.gradsLeft, [0, 0, 0]);
  assert.notDeepEqual(run.weightsAfter[2], run.weightsAfter[1]);
});

test("maxConsecutive non-finite steps in a row abort with a clear error; a good step in between resets the count", async () => {
  const aborting = setup({ 1: NaN, 2: NaN, 3: NaN });
  await assert.rejects(aborting.trainer.fit(), /training aborted at step 4: 3 steps in a row had a non-finite value \(last: loss is NaN\).*base lr now 1\.250e-3.*Fix: lower lr/s);
  assert.equal(aborting.steps.length, 3, "onStep runs after the guard; the aborting step never reports");

  const alternating = setup({ 1: NaN, 2: NaN, 4: NaN, 5: NaN }, { nanGuard: { maxConsecutive: 3, lrFactor: 0.1 } });
  const result = await alternating.trainer.fit();
  assert.equal(result.skippedSteps, 4);
  assert.ok(Math.abs(alternating.steps[5].lr - 0.01 * 0.1 ** 3) < 1e-15);
});
