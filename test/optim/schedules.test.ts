// Every schedule's factors against transformers' optimization.py formulas written out here, a few values
// worked by hand, and the Scheduler driving an optimizer's groups as LambdaLR does.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, Scheduler, constantSchedule, cosineSchedule, linearSchedule, scheduleByName } from "../../src/torch/index.js";
import { parameter } from "./helpers.js";

// transformers: _get_constant_schedule_with_warmup_lr_lambda
function hfConstant(currentStep: number, numWarmupSteps: number): number {
  if (currentStep < numWarmupSteps) return currentStep / Math.max(1.0, numWarmupSteps);
  return 1.0;
}
// transformers: _get_linear_schedule_with_warmup_lr_lambda
function hfLinear(currentStep: number, numWarmupSteps: number, numTrainingSteps: number): number {
  if (currentStep < numWarmupSteps) return currentStep / Math.max(1, numWarmupSteps);
  return Math.max(0.0, (numTrainingSteps - currentStep) / Math.max(1, numTrainingSteps - numWarmupSteps));
}
// transformers: _get_cosine_schedule_with_warmup_lr_lambda (with min_lr_rate, as get_cosine_with_min_lr_schedule_with_warmup)
function hfCosine(currentStep: number, numWarmupSteps: number, numTrainingSteps: number, numCycles: number, minLrRate = 0.0): number {
  if (currentStep < numWarmupSteps) return currentStep / Math.max(1, numWarmupSteps);
  const progress = (currentStep - numWarmupSteps) / Math.max(1, numTrainingSteps - numWarmupSteps);
  let factor = 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress));
  factor = factor * (1 - minLrRate) + minLrRate;
  return Math.max(0, factor);
}

const steps = (n: number) => Array.from({ length: n }, (_, i) => i);

test("constant schedule with warmup equals transformers' get_constant_schedule_with_warmup", () => {
  for (const warmup of [0, 1, 7]) {
    const schedule = constantSchedule({ warmupSteps: warmup });
    for (const step of steps(20)) assert.equal(schedule.lrAt(step), hfConstant(step, warmup), `warmup ${warmup}, step ${step}`);
  }
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(constantSchedule({ warmupSteps: 4 }).lrAt), [0, 0.25, 0.5, 0.75, 1, 1]);
  assert.equal(constantSchedule().lrAt(0), 1);
});

test("linear schedule with warmup equals transformers' get_linear_schedule_with_warmup", () => {
  for (const [warmup, total] of [[0, 10], [3, 10], [10, 10], [5, 1]]) {
    const schedule = linearSchedule({ warmupSteps: warmup, trainingSteps: total });
    for (const step of steps(15)) assert.equal(schedule.lrAt(step), hfLinear(step, warmup, total), `${warmup}/${total}, step ${step}`);
  }
  const schedule = linearSchedule({ warmupSteps: 10, trainingSteps: 110 });
  assert.deepEqual([0, 5, 10, 60, 110, 200].map(schedule.lrAt), [0, 0.5, 1, 0.5, 0, 0]);
});

test("cosine schedule with warmup equals transformers' get_cosine_schedule_with_warmup (and min_lr_rate)", () => {
  const cases: [number, number, number, number][] = [[0, 10, 0.5, 0], [3, 20, 0.5, 0], [4, 20, 1, 0], [2, 12, 0.5, 0.1], [5, 25, 2, 0.2]];
  for (const [warmup, total, cycles, minLr] of cases) {
    const schedule = cosineSchedule({ warmupSteps: warmup, trainingSteps: total, numCycles: cycles, minLrRatio: minLr });
    for (const step of steps(total + 5)) {
      assert.equal(schedule.lrAt(step), hfCosine(step, warmup, total, cycles, minLr), `${warmup}/${total}/${cycles}/${minLr}, step ${step}`);
    }
  }
  const plain = cosineSchedule({ warmupSteps: 10, trainingSteps: 110 });
  assert.equal(plain.lrAt(5), 0.5);
  assert.equal(plain.lrAt(10), 1);
  assert.ok(Math.abs(plain.lrAt(60) - 0.5) < 1e-15, "half way down the half-cosine");
  assert.ok(Math.abs(plain.lrAt(110)) < 1e-15, "0 at the end");
  const floored = cosineSchedule({ warmupSteps: 0, trainingSteps: 100, minLrRatio: 0.1 });
  assert.ok(Math.abs(floored.lrAt(100) - 0.1) < 1e-15, "min_lr_rate at the end");
  assert.ok(Math.abs(floored.lrAt(50) - 0.55) < 1e-15, "midway between 1 and min_lr_rate");
});

test("scheduleByName builds each schedule and refuses unknown names and bad steps", () => {
  assert.equal(scheduleByName("cosine", { warmupSteps: 2, trainingSteps: 10 }).lrAt(6), hfCosine(6, 2, 10, 0.5));
  assert.equal(scheduleByName("linear", { warmupSteps: 2, trainingSteps: 10 }).lrAt(6), hfLinear(6, 2, 10));
  assert.equal(scheduleByName("constant", { warmupSteps: 2 }).lrAt(1), 0.5);
  assert.throws(() => scheduleByName("step" as never), /unknown learning-rate schedule 'step'/);
  assert.throws(() => linearSchedule({ warmupSteps: 2 } as never), /trainingSteps must be an integer >= 0/);
  assert.throws(() => cosineSchedule({ trainingSteps: 10, warmupSteps: -1 }), /warmupSteps must be an integer >= 0/);
  assert.throws(() => cosineSchedule({ trainingSteps: 10, minLrRatio: 2 }), /minLrRatio must be in \[0, 1\]/);
});

test("Scheduler sets each group's lr = base lr * factor, step 0 at construction", () => {
  const a = parameter([1], [1]);
  const b = parameter([2], [1]);
  const optimizer = new AdamW([{ params: [a], lr: 3e-4 }, { params: [b], lr: 1e-3 }]);
  const schedule = cosineSchedule({ warmupSteps: 3, trainingSteps: 12 });
  const scheduler = new Scheduler(optimizer, schedule);
  assert.deepEqual(scheduler.baseLrs, [3e-4, 1e-3]);
  for (let step = 0; step < 15; step++) {
    assert.equal(scheduler.stepCount, step);
    assert.deepEqual(optimizer.paramGroups.map((g) => g.lr), [3e-4 * hfCosine(step, 3, 12, 0.5), 1e-3 * hfCosine(step, 3, 12, 0.5)]);
    assert.deepEqual(scheduler.lastLrs, optimizer.paramGroups.map((g) => g.lr));
    scheduler.step();
  }
  const state = scheduler.stateDict();
  assert.deepEqual(state, { schedule: "cosine", step: 15, baseLrs: [3e-4, 1e-3] });

  // A fresh scheduler over a fresh optimizer picks up at step 15.
  const c = parameter([1], [1]);
  const d = parameter([2], [1]);
  const fresh = new AdamW([{ params: [c], lr: 3e-4 }, { params: [d], lr: 1e-3 }]);
  const resumed = new Scheduler(fresh, cosineSchedule({ warmupSteps: 3, trainingSteps: 12 }));
  resumed.loadStateDict(JSON.parse(JSON.stringify(state)));
  assert.equal(resumed.stepCount, 15);
  assert.deepEqual(fresh.paramGroups.map((g) => g.lr), optimizer.paramGroups.map((g) => g.lr));
  assert.throws(() => new Scheduler(fresh, linearSchedule({ trainingSteps: 5 })).loadStateDict(state), /'cosine' schedule, this scheduler runs 'linear'/);
  assert.throws(() => resumed.loadStateDict({ ...state, baseLrs: [1] }), /1 base lrs, the optimizer has 2 param groups/);
  for (const p of [a, b, c, d]) p.dispose();
});
