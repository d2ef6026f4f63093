// The trainer's arithmetic against a float64 JS reference on linear regression: the gradient of a mean loss under
// gradient accumulation (partial last accumulation included), clipping, decay only on matrices, and the schedules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Trainer, planEpoch, type StepInfo, type TrainOptions } from "../../src/train/index.js";
import { RegressionTask, assertAllClose, makeRegressionData, referenceRegression, regressionSource, temporaryRunDir } from "./helpers.js";

const data = makeRegressionData(10, 3, 7);
const w0 = [0.1, -0.2, 0.3];
const b0 = -0.05;

async function train(options: Partial<TrainOptions>) {
  const task = new RegressionTask(3, w0, b0);
  const steps: StepInfo[] = [];
  const trainer = new Trainer(task, regressionSource(data), null, {
    batchSize: 4, lr: 0.05, schedule: "constant", outputDir: temporaryRunDir("ref"), progress: false, log: () => {},
    onStep: (info) => steps.push(info), ...options,
  });
  const result = await trainer.fit();
  return { task, steps, result, trainer };
}

/** The micro-batches of each optimizer step, as the trainer plans them. */
function plannedSteps(epochs: number, batchSize: number, accumulation: number, shuffle: boolean, seed = 42): number[][][] {
  const out: number[][][] = [];
  for (let epoch = 0; epoch < epochs; epoch++) {
    const plan = planEpoch(data.y.length, batchSize, accumulation, seed, epoch, shuffle);
    for (const { first, end } of plan.steps) out.push(plan.microBatches.slice(first, end));
  }
  return out;
}

// clipGradNorm reports (and clips with) a float32 norm, so norms match the float64 reference to float32 precision.
const NORM_TOLERANCE = 1e-6;

const weightsOf = (task: RegressionTask) => ({ weight: task.model.fc.weight.dataAsNumbers(), bias: task.model.fc.bias!.item() });

test("gradient accumulation: batch 4 x 2 accumulation (last accumulation partial) matches the float64 reference", async () => {
  const { task, steps } = await train({ epochs: 2, gradAccumulation: 2, shuffle: false, weightDecay: 0.1 });
  const micro = plannedSteps(2, 4, 2, false);
  // 10 samples: micro-batches of 4, 4, 2; steps [mb0, mb1] and [mb2] (the partial accumulation still steps).
  assert.deepEqual(micro.slice(0, 2).map((s) => s.map((mb) => mb.length)), [[4, 4], [2]]);
  const reference = referenceRegression(data, w0, b0, { lr: () => 0.05, weightDecay: 0.1, maxGradNorm: null, steps: micro });
  assert.equal(steps.length, 4);
  assertAllClose(steps.map((s) => s.gradNorm!), reference.gradNorms, "grad norms", NORM_TOLERANCE);
  const got = weightsOf(task);
  assertAllClose(got.weight, reference.weight, "weight");
  assertAllClose([got.bias], [reference.bias], "bias");
});

test("gradient accumulation: accum 2 x batch 4 equals batch 8 for a mean loss (shuffled, 3 epochs)", async () => {
  const accumulated = await train({ epochs: 3, batchSize: 4, gradAccumulation: 2, weightDecay: 0.01 });
  const whole = await train({ epochs: 3, batchSize: 8, gradAccumulation: 1, weightDecay: 0.01 });
  // Not the same plan (the shuffled epochs cut into 4+4 | 2 versus 8 | 2): equal only if each step's gradient is the mean.
  assertAllClose(accumulated.steps.map((s) => s.gradNorm!), whole.steps.map((s) => s.gradNorm!), "grad norms", NORM_TOLERANCE);
  assertAllClose(weightsOf(accumulated.task).weight, weightsOf(whole.task).weight, "weight", 1e-12);
  // A sum instead of a mean over micro-batches would double the gradient: the reference pins the scale.
  const reference = referenceRegression(data, w0, b0, { lr: () => 0.05, weightDecay: 0.01, maxGradNorm: null, steps: plannedSteps(3, 8, 1, true) });
  assertAllClose(whole.steps.map((s) => s.gradNorm!), reference.gradNorms, "grad norms vs reference", NORM_TOLERANCE);
});

test("clipGradNorm: gradients are clipped to maxGradNorm before the update (reported norm is the one before)", async () => {
  const { task, steps } = await train({ epochs: 3, maxGradNorm: 0.5, shuffle: false, weightDecay: 0 });
  const micro = plannedSteps(3, 4, 1, false);
  const reference = referenceRegression(data, w0, b0, { lr: () => 0.05, weightDecay: 0, maxGradNorm: 0.5, steps: micro });
  const unclipped = referenceRegression(data, w0, b0, { lr: () => 0.05, weightDecay: 0, maxGradNorm: null, steps: micro });
  assert.ok(reference.gradNorms.some((n) => n > 1), "the test needs gradient norms above maxGradNorm");
  assertAllClose(steps.map((s) => s.gradNorm!), reference.gradNorms, "grad norms", NORM_TOLERANCE);
  assertAllClose(weightsOf(task).weight, reference.weight, "weight", NORM_TOLERANCE);
  assert.ok(Math.abs(reference.weight[0] - unclipped.weight[0]) > 1e-3, "clipping must change the trajectory for this test to mean anything");
});

test("schedules: cosine with warmupSteps and linear with warmupRatio set the lr of every step", async () => {
  const cosine = await train({ epochs: 3, schedule: "cosine", warmupSteps: 2, lr: 0.1, shuffle: false });
  // 3 epochs x 3 steps = 9 steps; transformers' get_cosine_schedule_with_warmup.
  const cosineLr = (s: number) => 0.1 * (s < 2 ? s / 2 : 0.5 * (1 + Math.cos((Math.PI * (s - 2)) / 7)));
  assertAllClose(cosine.steps.map((s) => s.lr), Array.from({ length: 9 }, (_, s) => cosineLr(s)), "cosine lrs", 1e-15);
  const reference = referenceRegression(data, w0, b0, { lr: cosineLr, weightDecay: 0.01, maxGradNorm: null, steps: plannedSteps(3, 4, 1, false) });
  assertAllClose(weightsOf(cosine.task).weight, reference.weight, "weight under the cosine schedule");

  const linear = await train({ maxSteps: 8, schedule: "linear", warmupRatio: 0.3, lr: 0.2 });
  // ceil(0.3 * 8) = 3 warmup steps, then linear decay to 0 at step 8.
  const linearLr = (s: number) => 0.2 * (s < 3 ? s / 3 : (8 - s) / 5);
  assertAllClose(linear.steps.map((s) => s.lr), Array.from({ length: 8 }, (_, s) => linearLr(s)), "linear lrs", 1e-15);
  assert.equal(linear.trainer.options.warmupSteps, 3);
  assert.equal(linear.result.steps, 8);
  assert.equal(linear.result.stopReason, "completed");
});
