// AdamW against a float64 transcription of torch.optim.AdamW's update, over several steps, two param
// groups and parameters that skip steps (grad null).
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, Tensor, dispose } from "../../src/torch/index.js";
import { assertClose, device, numel, parameter, setGrad, values, valuesOf } from "./helpers.js";

interface AdamWReferenceState {
  step: number;
  expAvg: number[];
  expAvgSq: number[];
}

// torch.optim.AdamW (single-tensor form) in float64.
function adamwReference(
  param: number[], grad: number[], state: AdamWReferenceState,
  h: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number },
): number[] {
  state.step += 1;
  const biasCorrection1 = 1 - h.beta1 ** state.step;
  const biasCorrection2 = 1 - h.beta2 ** state.step;
  return param.map((p, i) => {
    const decayed = p * (1 - h.lr * h.weightDecay);
    state.expAvg[i] = h.beta1 * state.expAvg[i] + (1 - h.beta1) * grad[i];
    state.expAvgSq[i] = h.beta2 * state.expAvgSq[i] + (1 - h.beta2) * grad[i] * grad[i];
    const denom = Math.sqrt(state.expAvgSq[i]) / Math.sqrt(biasCorrection2) + h.eps;
    return decayed - (h.lr / biasCorrection1) * (state.expAvg[i] / denom);
  });
}

interface Case {
  shape: number[];
  group: 0 | 1;
  /** Steps (0-based) on which this parameter has no gradient. */
  skipSteps: number[];
}

test(`AdamW matches a float64 reference over 6 steps, two groups, skipped grads (${device})`, () => {
  const cases: Case[] = [
    { shape: [3, 4], group: 0, skipSteps: [] },
    { shape: [5], group: 0, skipSteps: [2] },
    { shape: [2, 2], group: 1, skipSteps: [1, 4] },
    { shape: [4], group: 1, skipSteps: [0, 1, 2, 3, 4, 5] },
  ];
  const hyper = [
    { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 },
    { lr: 0.05, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0 },
  ];
  const params = cases.map((c, i) => parameter(values(100 + i, numel(c.shape)), c.shape));
  const expected = cases.map((c, i) => values(100 + i, numel(c.shape)));
  const reference = cases.map((c) => ({ step: 0, expAvg: new Array(numel(c.shape)).fill(0), expAvgSq: new Array(numel(c.shape)).fill(0) }));
  const optimizer = new AdamW([
    { params: params.filter((_, i) => cases[i].group === 0), lr: hyper[0].lr, weightDecay: hyper[0].weightDecay, name: "decay" },
    {
      params: params.filter((_, i) => cases[i].group === 1), lr: hyper[1].lr, weightDecay: hyper[1].weightDecay,
      betas: [hyper[1].beta1, hyper[1].beta2], eps: hyper[1].eps,
    },
  ], { betas: [0.9, 0.999], eps: 1e-8 });

  for (let step = 0; step < 6; step++) {
    cases.forEach((c, i) => {
      if (c.skipSteps.includes(step)) return;
      const grad = values(1000 * step + i, numel(c.shape), 0.5);
      setGrad(params[i], grad);
      expected[i] = adamwReference(expected[i], grad, reference[i], hyper[c.group]);
    });
    optimizer.step();
    optimizer.zeroGrad();
    for (const param of params) assert.equal(param.grad, null, "zeroGrad() sets grads to null");
  }

  cases.forEach((_, i) => assertClose(valuesOf(params[i]), expected[i], `param ${i}`));
  const { tensors, meta } = optimizer.stateDict();
  // Param 3 never had a gradient: no state; the others count only the steps they took.
  assert.deepEqual(Object.keys(tensors).filter((k) => k.startsWith("state.3.")), []);
  for (let i = 0; i < 3; i++) {
    assert.equal(tensors[`state.${i}.step`].item(), reference[i].step, `step count of param ${i}`);
    assert.equal(tensors[`state.${i}.step`].dtype, "float32");
    assertClose(valuesOf(tensors[`state.${i}.exp_avg`]), reference[i].expAvg, `exp_avg of param ${i}`);
    // The fused CUDA kernel orders its float32 arithmetic differently: about 1e-5 relative on squared grads.
    const rtol = device.startsWith("cuda") ? 5e-5 : 1e-5;
    assertClose(valuesOf(tensors[`state.${i}.exp_avg_sq`]), reference[i].expAvgSq, `exp_avg_sq of param ${i}`, rtol, 1e-9);
  }
  assert.deepEqual(meta.groups.map((g) => g.params), [[0, 1], [2, 3]]);
  assert.equal(meta.groups[0].name, "decay");
  assert.deepEqual(meta.groups[1].betas, [0.8, 0.99]);
  assert.equal(meta.groups[1].eps, 1e-6);
  assert.equal(meta.optimizer, "AdamW");
  dispose(tensors);
  optimizer.dispose();
  dispose(params);
});

test("AdamW defaults are torch.optim.AdamW's", () => {
  const param = parameter([1, 2], [2]);
  const optimizer = new AdamW([param]);
  const group = optimizer.paramGroups[0];
  assert.equal(group.lr, 1e-3);
  assert.deepEqual(group.betas, [0.9, 0.999]);
  assert.equal(group.eps, 1e-8);
  assert.equal(group.weightDecay, 0.01);
  assert.equal(optimizer.fused, true);
  param.dispose();
});

test(`AdamW fused and unfused settings give the same result (${device})`, () => {
  const run = (fused: boolean) => {
    const param = parameter(values(7, 64), [8, 8]);
    const optimizer = new AdamW([param], { lr: 0.02, weightDecay: 0.05, fused });
    for (let step = 0; step < 4; step++) {
      setGrad(param, values(50 + step, 64));
      optimizer.step();
    }
    const out = valuesOf(param);
    optimizer.dispose();
    param.dispose();
    return out;
  };
  // On the CPU both take the _foreach path; on CUDA the fused kernel differs only by float32 rounding.
  assertClose(run(true), run(false), "fused vs unfused", 1e-5, 1e-6);
});

test("AdamW leaves parameters without a gradient untouched, including weight decay", () => {
  const withGrad = parameter([1, 2, 3], [3]);
  const without = parameter([4, 5, 6], [3]);
  const optimizer = new AdamW([withGrad, without], { lr: 0.1, weightDecay: 0.5 });
  setGrad(withGrad, [0.1, 0.2, 0.3]);
  optimizer.step();
  assert.deepEqual(valuesOf(without), [4, 5, 6]);
  assert.notDeepEqual(valuesOf(withGrad), [1, 2, 3]);
  optimizer.dispose();
  dispose([withGrad, without]);
});

test("AdamW reads each group's lr at every step (a scheduler may change it)", () => {
  const param = parameter([1], [1]);
  const optimizer = new AdamW([param], { lr: 0.1, weightDecay: 0 });
  optimizer.paramGroups[0].lr = 0;
  setGrad(param, [1]);
  optimizer.step();
  assert.deepEqual(valuesOf(param), [1], "lr 0 changes nothing");
  optimizer.paramGroups[0].lr = 0.1;
  optimizer.step();
  // Step 2 with the same gradient: m/bc1 = 1, sqrt(v/bc2) = 1, so the update is lr / (1 + eps).
  assertClose(valuesOf(param), [1 - 0.1 / (1 + 1e-8)], "after the second step");
  optimizer.dispose();
  param.dispose();
});

test("AdamW state tensors are new handles: disposing the state dict leaves the optimizer working", () => {
  const param = parameter([1, 2], [2]);
  const optimizer = new AdamW([param], { lr: 0.1 });
  setGrad(param, [1, 1]);
  optimizer.step();
  const { tensors } = optimizer.stateDict();
  assert.deepEqual(Object.keys(tensors).sort(), ["state.0.exp_avg", "state.0.exp_avg_sq", "state.0.step"]);
  for (const t of Object.values(tensors)) assert.ok(t instanceof Tensor);
  dispose(tensors);
  optimizer.step();
  const again = optimizer.stateDict();
  assert.equal(again.tensors["state.0.step"].item(), 2);
  dispose(again.tensors);
  optimizer.dispose();
  param.dispose();
});
