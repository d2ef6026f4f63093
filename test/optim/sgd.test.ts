// SGD against a float64 transcription of torch.optim.SGD's update (momentum, dampening, Nesterov, weight decay).
import { test } from "node:test";
import assert from "node:assert/strict";
import { SGD, dispose } from "../../src/torch/index.js";
import { assertClose, device, numel, parameter, setGrad, values, valuesOf } from "./helpers.js";

interface SgdSettings {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

// torch.optim.SGD (single-tensor form) in float64; the buffer is created as a copy of the first step's d.
function sgdReference(param: number[], grad: number[], buffer: { value: number[] | null }, s: SgdSettings): number[] {
  let d = grad.map((g, i) => g + s.weightDecay * param[i]);
  if (s.momentum !== 0) {
    const previous = buffer.value;
    buffer.value = previous === null ? [...d] : previous.map((b, i) => s.momentum * b + (1 - s.dampening) * d[i]);
    const buf = buffer.value;
    d = s.nesterov ? d.map((x, i) => x + s.momentum * buf[i]) : [...buf];
  }
  return param.map((p, i) => p - s.lr * d[i]);
}

const settings: SgdSettings[] = [
  { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
  { lr: 0.05, momentum: 0, dampening: 0, weightDecay: 0.1, nesterov: false },
  { lr: 0.05, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false },
  { lr: 0.02, momentum: 0.8, dampening: 0.3, weightDecay: 0.01, nesterov: false },
  { lr: 0.03, momentum: 0.9, dampening: 0, weightDecay: 0.05, nesterov: true },
];

for (const s of settings) {
  test(`SGD matches a float64 reference: ${JSON.stringify(s)} (${device})`, () => {
    const shapes = [[4, 3], [6]];
    const params = shapes.map((shape, i) => parameter(values(10 + i, numel(shape)), shape));
    const expected = shapes.map((shape, i) => values(10 + i, numel(shape)));
    const buffers = shapes.map(() => ({ value: null as number[] | null }));
    const optimizer = new SGD(params, s);
    for (let step = 0; step < 5; step++) {
      shapes.forEach((shape, i) => {
        // The second parameter skips step 1: no update, no momentum change.
        if (i === 1 && step === 1) return;
        const grad = values(300 + 10 * step + i, numel(shape));
        setGrad(params[i], grad);
        expected[i] = sgdReference(expected[i], grad, buffers[i], s);
      });
      optimizer.step();
      optimizer.zeroGrad();
    }
    params.forEach((param, i) => assertClose(valuesOf(param), expected[i], `param ${i}`));
    const { tensors } = optimizer.stateDict();
    if (s.momentum === 0) {
      assert.deepEqual(Object.keys(tensors), [], "no momentum, no state");
    } else {
      params.forEach((_, i) => assertClose(valuesOf(tensors[`state.${i}.momentum_buffer`]), buffers[i].value!, `momentum buffer ${i}`));
    }
    dispose(tensors);
    optimizer.dispose();
    dispose(params);
  });
}

test("SGD groups override the defaults per group", () => {
  const a = parameter([1, 1], [2]);
  const b = parameter([1, 1], [2]);
  const optimizer = new SGD([{ params: [a] }, { params: [b], lr: 0.5, weightDecay: 1 }], { lr: 0.1 });
  setGrad(a, [1, 2]);
  setGrad(b, [1, 2]);
  optimizer.step();
  assertClose(valuesOf(a), [1 - 0.1 * 1, 1 - 0.1 * 2], "group 0");
  assertClose(valuesOf(b), [1 - 0.5 * 2, 1 - 0.5 * 3], "group 1");
  assert.equal(optimizer.paramGroups[1].momentum, 0);
  optimizer.dispose();
  dispose([a, b]);
});
