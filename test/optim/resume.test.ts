// Saving optimizer + scheduler state mid-run, loading it into fresh ones (through a host copy of every tensor
// and JSON for the rest) and continuing gives the same parameters, bit for bit, as a run never interrupted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AdamW, SGD, Scheduler, cosineSchedule, linearSchedule, dispose, type Optimizer, type Tensor } from "../../src/torch/index.js";
import { device, numel, parameter, roundTripJson, roundTripTensors, setGrad, values, valuesOf } from "./helpers.js";

const shapes = [[4, 5], [5], [3, 3]];
const totalSteps = 10;
const interruptAt = 4;

type Setup = (params: Tensor[]) => { optimizer: Optimizer; scheduler: Scheduler };

function trainSteps(params: Tensor[], optimizer: Optimizer, scheduler: Scheduler, from: number, to: number) {
  for (let step = from; step < to; step++) {
    params.forEach((param, i) => {
      // Param 2 has no gradient on odd steps, so its step count lags the others'.
      if (i === 2 && step % 2 === 1) return;
      setGrad(param, values(7000 + 31 * step + i, numel(shapes[i])));
    });
    optimizer.step();
    optimizer.zeroGrad();
    scheduler.step();
  }
}

function checkResume(name: string, setup: Setup) {
  test(`${name}: save at step ${interruptAt}, load into fresh optimizer and scheduler, continue = uninterrupted (${device})`, () => {
    const initial = shapes.map((shape, i) => values(40 + i, numel(shape)));

    const straight = initial.map((data, i) => parameter(data, shapes[i]));
    const a = setup(straight);
    trainSteps(straight, a.optimizer, a.scheduler, 0, totalSteps);

    const first = initial.map((data, i) => parameter(data, shapes[i]));
    const b = setup(first);
    trainSteps(first, b.optimizer, b.scheduler, 0, interruptAt);
    const saved = b.optimizer.stateDict();
    const checkpoint = {
      params: first.map(valuesOf),
      tensors: roundTripTensors(saved.tensors),
      meta: roundTripJson(saved.meta),
      scheduler: roundTripJson(b.scheduler.stateDict()),
    };
    dispose(saved.tensors);
    b.optimizer.dispose();
    dispose(first);

    const second = checkpoint.params.map((data, i) => parameter(data, shapes[i]));
    const c = setup(second);
    c.optimizer.loadStateDict({ tensors: checkpoint.tensors, meta: checkpoint.meta });
    c.scheduler.loadStateDict(checkpoint.scheduler);
    dispose(checkpoint.tensors);
    trainSteps(second, c.optimizer, c.scheduler, interruptAt, totalSteps);

    straight.forEach((param, i) => assert.ok(param.equal(second[i]), `param ${i} differs from the uninterrupted run`));
    assert.deepEqual(c.optimizer.paramGroups.map((g) => g.lr), a.optimizer.paramGroups.map((g) => g.lr));
    const [sa, sc] = [a.optimizer.stateDict(), c.optimizer.stateDict()];
    assert.deepEqual(Object.keys(sc.tensors).sort(), Object.keys(sa.tensors).sort());
    for (const key of Object.keys(sa.tensors)) assert.ok(sa.tensors[key].equal(sc.tensors[key]), `state ${key}`);
    assert.deepEqual(roundTripJson(sc.meta), roundTripJson(sa.meta));
    dispose([sa.tensors, sc.tensors]);
    a.optimizer.dispose();
    c.optimizer.dispose();
    dispose([straight, second]);
  });
}

checkResume("AdamW + cosine", (params) => {
  const optimizer = new AdamW([
    { params: params.slice(0, 2), lr: 0.01, weightDecay: 0.1, name: "decay" },
    { params: params.slice(2), lr: 0.02, weightDecay: 0, name: "no_decay" },
  ]);
  return { optimizer, scheduler: new Scheduler(optimizer, cosineSchedule({ warmupSteps: 3, trainingSteps: totalSteps })) };
});

checkResume("SGD (Nesterov) + linear", (params) => {
  const optimizer = new SGD([{ params: params.slice(0, 2) }, { params: params.slice(2), lr: 0.05 }], {
    lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01,
  });
  return { optimizer, scheduler: new Scheduler(optimizer, linearSchedule({ warmupSteps: 2, trainingSteps: totalSteps })) };
});

test("loadStateDict puts the saved hyperparameters back into the groups", () => {
  const p = parameter([1, 2], [2]);
  const source = new AdamW([p], { lr: 0.5, betas: [0.5, 0.6], eps: 1e-3, weightDecay: 0.2 });
  const target = new AdamW([parameter([1, 2], [2])]);
  const saved = source.stateDict();
  target.loadStateDict(saved);
  const group = target.paramGroups[0];
  assert.deepEqual([group.lr, group.betas, group.eps, group.weightDecay], [0.5, [0.5, 0.6], 1e-3, 0.2]);
  dispose([p, target.paramGroups[0].params]);
});
