// clipGradNorm against the norm and scaling computed by hand in float64 (torch.nn.utils.clip_grad_norm_).
import { test } from "node:test";
import assert from "node:assert/strict";
import { clipGradNorm, dispose } from "../../src/torch/index.js";
import { assertClose, device, parameter, setGrad, values, valuesOf } from "./helpers.js";

function gradsOf(params: ReturnType<typeof parameter>[]): number[][] {
  return params.map((p) => {
    const grad = p.grad!;
    const out = valuesOf(grad);
    grad.dispose();
    return out;
  });
}

function setup() {
  const a = parameter(values(1, 6), [2, 3]);
  const b = parameter(values(2, 4), [4]);
  const noGrad = parameter(values(3, 3), [3]);
  const gradA = values(4, 6, 2);
  const gradB = values(5, 4, 2);
  setGrad(a, gradA);
  setGrad(b, gradB);
  return { params: [a, b, noGrad], grads: [gradA, gradB] };
}

const pNorm = (xs: number[], p: number) =>
  p === Infinity ? Math.max(...xs.map(Math.abs)) : xs.reduce((sum, x) => sum + Math.abs(x) ** p, 0) ** (1 / p);

for (const normType of [2, 1, Infinity]) {
  test(`clipGradNorm scales grads over maxNorm (norm ${normType}, ${device})`, () => {
    const { params, grads } = setup();
    const all = grads.flat();
    const expectedNorm = pNorm(all, normType);
    const maxNorm = expectedNorm / 3;
    const total = clipGradNorm(params, maxNorm, normType);
    assert.equal(total.shape.length, 0);
    assert.equal(total.dtype, "float32");
    assertClose([total.item()], [expectedNorm], "total norm");
    const coefficient = maxNorm / (expectedNorm + 1e-6);
    const clipped = gradsOf(params.slice(0, 2));
    clipped.forEach((g, i) => assertClose(g, grads[i].map((x) => x * coefficient), `grad ${i}`));
    assert.equal(params[2].grad, null, "a parameter without grad stays without");
    assertClose([pNorm(clipped.flat(), normType)], [maxNorm], "norm after clipping", 1e-5);
    total.dispose();
    dispose(params);
  });
}

test(`clipGradNorm leaves grads as they are when under maxNorm (${device})`, () => {
  const { params, grads } = setup();
  const expectedNorm = pNorm(grads.flat(), 2);
  const total = clipGradNorm(params, expectedNorm * 2);
  assertClose([total.item()], [expectedNorm], "total norm");
  assert.deepEqual(gradsOf(params.slice(0, 2)), grads, "grads unchanged bit for bit");
  total.dispose();
  dispose(params);
});

test("clipGradNorm of parameters without grads is 0", () => {
  const a = parameter([1, 2], [2]);
  const total = clipGradNorm([a], 1);
  assert.equal(total.item(), 0);
  total.dispose();
  a.dispose();
});

test("clipGradNorm refuses a negative maxNorm and a non-positive normType", () => {
  const a = parameter([1, 2], [2]);
  assert.throws(() => clipGradNorm([a], -1), /maxNorm must be a number >= 0/);
  assert.throws(() => clipGradNorm([a], 1, 0), /normType must be > 0/);
  a.dispose();
});
