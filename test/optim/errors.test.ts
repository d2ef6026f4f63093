// Misuse is refused with a message that names the group, the parameter and the fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, SGD, dispose, tensor, zeros } from "../../src/torch/index.js";
import { device, parameter, setGrad } from "./helpers.js";

test("a parameter in two groups is an error, also through a second handle", () => {
  const p = parameter([1, 2], [2]);
  const q = parameter([3, 4], [2]);
  assert.throws(() => new AdamW([{ params: [p, q] }, { params: [q] }]), /parameter 0 of param group 1 is already in param group 0/);
  assert.throws(() => new AdamW([{ params: [p], name: "a" }, { params: [p.alias()], name: "b" }]), /param group 1 \('b'\) is already in param group 0 \('a'\)/);
  assert.throws(() => new AdamW([p, q, p]), /parameter 2 of param group 0 is already in param group 0/);
  const optimizer = new SGD([p], { lr: 0.1 });
  assert.throws(() => optimizer.addParamGroup({ params: [p] }), /each parameter may appear in one group only/);
  dispose([p, q]);
});

test("an empty group, no parameters at all, and unknown options are errors", () => {
  const p = parameter([1, 2], [2]);
  assert.throws(() => new AdamW([{ params: [p] }, { params: [], name: "heads" }]), /param group 1 \('heads'\) has no parameters/);
  assert.throws(() => new AdamW([]), /got no parameters/);
  assert.throws(() => new AdamW([{ params: [p], momentum: 0.9 } as never]), /unknown option 'momentum' in param group 0/);
  assert.throws(() => new AdamW([p], { beta1: 0.9 } as never), /AdamW: unknown option 'beta1'/);
  p.dispose();
});

test("non-float and non-leaf parameters are errors", () => {
  const ints = tensor([1, 2, 3], { dtype: "int64", device });
  assert.throws(() => new AdamW([ints]), /parameter 0 of param group 0 has dtype int64; only floating-point tensors can be optimized/);
  const leaf = parameter([1, 2], [2]);
  const computed = leaf.mul(2);
  assert.throws(() => new SGD([computed], { lr: 1 }), /is not a leaf tensor/);
  dispose([ints, leaf, computed]);
});

test("hyperparameters out of range are errors", () => {
  const p = parameter([1, 2], [2]);
  assert.throws(() => new AdamW([p], { lr: -1 }), /AdamW: lr must be a number >= 0 in AdamW options, got -1/);
  assert.throws(() => new AdamW([p], { betas: [0.9, 1] }), /betas\[1\] must be a number in \[0, 1\)/);
  assert.throws(() => new AdamW([{ params: [p], eps: -1 }]), /eps must be a number >= 0 in param group 0/);
  assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /Nesterov momentum needs momentum > 0 and dampening 0/);
  assert.throws(() => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /Nesterov/);
  p.dispose();
});

test("loadStateDict refuses state of another optimizer, layout or shape, and changes nothing then", () => {
  const p = parameter([1, 2], [2]);
  const optimizer = new AdamW([p], { lr: 0.1 });
  setGrad(p, [1, 1]);
  optimizer.step();
  const good = optimizer.stateDict();
  const other = new AdamW([parameter([1, 2, 3], [3])]);
  assert.throws(() => other.loadStateDict(good), /'state.0.exp_avg' has shape \[2\], param 0 needs \[3\]/);
  const sgd = new SGD([parameter([1, 2], [2])], { lr: 0.1 });
  assert.throws(() => sgd.loadStateDict(good), /the state was saved by AdamW, not SGD/);
  const twoGroups = new AdamW([{ params: [parameter([1], [1])] }, { params: [parameter([1], [1])] }]);
  assert.throws(() => twoGroups.loadStateDict(good), /the state has 1 param groups, this optimizer has 2/);
  const { "state.0.step": _step, ...partial } = good.tensors;
  const fresh = new AdamW([parameter([1, 2], [2])]);
  assert.throws(() => fresh.loadStateDict({ tensors: partial, meta: good.meta }), /the state of param 0 has only exp_avg, exp_avg_sq/);
  const extra = zeros([2]);
  assert.throws(() => fresh.loadStateDict({ tensors: { ...good.tensors, "state.0.momentum_buffer": extra }, meta: good.meta }), /is not AdamW state/);
  assert.throws(() => fresh.loadStateDict({ tensors: { "state.5.exp_avg": extra }, meta: good.meta }), /names param 5, but there are 1 params/);
  assert.throws(() => fresh.loadStateDict({ tensors: { "exp_avg.0": extra }, meta: good.meta }), /unexpected tensor 'exp_avg.0'/);
  assert.equal(fresh.paramGroups[0].lr, 1e-3, "a refused load leaves the hyperparameters as they were");
  const { tensors } = fresh.stateDict();
  assert.deepEqual(Object.keys(tensors), [], "and the state empty");
  dispose([good.tensors, extra]);
  for (const o of [optimizer, other, sgd, twoGroups, fresh]) {
    o.dispose();
    for (const g of o.paramGroups) dispose(g.params);
  }
});
