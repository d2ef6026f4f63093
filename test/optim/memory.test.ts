// Training loops hold a flat number of live tensors: optimizer state is made once, grads and
// temporaries are freed each step (AdamW with clipping and a schedule; SGD replacing momentum handles).
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, SGD, Scheduler, clipGradNorm, cosineSchedule, dispose, liveTensorCount, tensor, tidy, type Optimizer } from "../../src/torch/index.js";
import { device, parameter, values } from "./helpers.js";

function trainLoop(optimizer: Optimizer, weight: ReturnType<typeof parameter>, bias: ReturnType<typeof parameter>, steps: number) {
  const inputs = tensor(Float32Array.from(values(1, 32)), { shape: [8, 4], device }).keep();
  const targets = tensor(Float32Array.from(values(2, 16)), { shape: [8, 2], device }).keep();
  const scheduler = new Scheduler(optimizer, cosineSchedule({ warmupSteps: 10, trainingSteps: steps }));
  const oneStep = () =>
    tidy(() => {
      const loss = inputs.matmul(weight).add(bias).sub(targets).square().mean();
      loss.backward();
      clipGradNorm([weight, bias], 1.0);
      optimizer.step();
      optimizer.zeroGrad();
      scheduler.step();
      return loss.item();
    });
  const firstLoss = oneStep();
  const before = liveTensorCount();
  let lastLoss = firstLoss;
  for (let step = 1; step < steps; step++) lastLoss = oneStep();
  assert.equal(liveTensorCount(), before, "live tensors after the loop");
  assert.ok(lastLoss < firstLoss, `the loss goes down (${firstLoss} -> ${lastLoss})`);
  dispose([inputs, targets]);
}

test(`AdamW + clipGradNorm + cosine schedule: live tensors flat over 1000 steps (${device})`, () => {
  const start = liveTensorCount();
  const weight = parameter(values(3, 8), [4, 2]);
  const bias = parameter([0, 0], [2]);
  const optimizer = new AdamW([{ params: [weight] }, { params: [bias], weightDecay: 0 }], { lr: 0.01 });
  trainLoop(optimizer, weight, bias, 1000);
  optimizer.dispose();
  dispose([weight, bias]);
  assert.equal(liveTensorCount(), start, "everything freed after dispose()");
});

test(`SGD with momentum: live tensors flat over 1000 steps (${device})`, () => {
  const start = liveTensorCount();
  const weight = parameter(values(3, 8), [4, 2]);
  const bias = parameter([0, 0], [2]);
  const optimizer = new SGD([weight, bias], { lr: 0.05, momentum: 0.9 });
  trainLoop(optimizer, weight, bias, 1000);
  optimizer.dispose();
  dispose([weight, bias]);
  assert.equal(liveTensorCount(), start, "everything freed after dispose()");
});
