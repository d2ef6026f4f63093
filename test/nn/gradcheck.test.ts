// Finite-difference gradient checks (float64) of every layer, with respect to its input and its parameters.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  nn, Linear, Embedding, LayerNorm, RMSNorm, GroupNorm, Conv2d, Conv3d, GELU, QuickGELU, SiLU, Tanh, Sigmoid,
  Tensor, randn, tensor, manualSeed, noGrad, tidy, linspace,
} from "../../src/index.js";
import { gradcheck, projectedLoss } from "./helpers.js";

const F64 = { dtype: "float64" } as const;
type Layer = nn.Module & { forward(x: Tensor): Tensor };

/** Random input that requires grad, and random values for every parameter (so affine terms matter). */
function setup(layer: nn.Module, inputShape: number[]): Tensor {
  noGrad(() => {
    for (const p of layer.parameters()) tidy(() => p.copy_(randn(p.shape, F64).mul(0.5).add(1)));
  });
  return randn(inputShape, { ...F64, requiresGrad: true });
}

function checkLayer(layer: Layer, inputShape: number[], what: string): void {
  const x = setup(layer, inputShape);
  gradcheck(projectedLoss(() => layer.forward(x)), [x, ...layer.parameters()], { what });
  x.dispose();
  layer.dispose();
}

test("Linear gradients", () => {
  manualSeed(20);
  checkLayer(new Linear(3, 4, F64), [2, 3], "linear");
  checkLayer(new Linear(3, 2, { ...F64, bias: false }), [2, 2, 3], "linear without bias");
});

test("Embedding gradients (weight; indices are not differentiable)", () => {
  manualSeed(21);
  const embedding = new Embedding(5, 3, F64);
  const ids = tensor([[0, 4, 2], [2, 2, 1]], { dtype: "int64" });
  gradcheck(projectedLoss(() => embedding.forward(ids)), embedding.parameters(), { what: "embedding" });
  ids.dispose();
  embedding.dispose();
});

test("LayerNorm gradients", () => {
  manualSeed(22);
  checkLayer(new LayerNorm(4, F64), [3, 4], "layer norm");
  checkLayer(new LayerNorm([2, 3], { ...F64, eps: 1e-2 }), [2, 2, 3], "layer norm over two dims");
});

test("RMSNorm gradients", () => {
  manualSeed(23);
  checkLayer(new RMSNorm(5, F64), [3, 5], "rms norm");
});

test("GroupNorm gradients", () => {
  manualSeed(24);
  checkLayer(new GroupNorm(2, 4, F64), [2, 4, 3], "group norm");
});

test("Conv2d gradients", () => {
  manualSeed(25);
  checkLayer(new Conv2d(2, 3, [2, 3], { ...F64, stride: [1, 2], padding: 1 }), [1, 2, 4, 5], "conv2d");
  checkLayer(new Conv2d(4, 2, 2, { ...F64, groups: 2, dilation: 2 }), [1, 4, 4, 4], "grouped dilated conv2d");
  checkLayer(new Conv2d(1, 2, 2, { ...F64, padding: "same" }), [1, 1, 3, 3], "conv2d same padding");
});

test("Conv3d gradients", () => {
  manualSeed(26);
  checkLayer(new Conv3d(2, 2, [2, 2, 2], { ...F64, stride: 2, bias: false }), [1, 2, 2, 4, 4], "conv3d patches");
  checkLayer(new Conv3d(1, 2, [1, 2, 2], { ...F64, padding: [0, 1, 0] }), [1, 1, 2, 3, 3], "conv3d");
});

test("activation gradients", () => {
  const activations: [string, Layer][] = [
    ["gelu", new GELU()],
    ["gelu tanh", new GELU({ approximate: "tanh" })],
    ["quick_gelu", new QuickGELU()],
    ["silu", new SiLU()],
    ["tanh", new Tanh()],
    ["sigmoid", new Sigmoid()],
    ["relu (away from 0)", nn.activation("relu")],
  ];
  // Points avoid relu's kink at 0.
  const x = linspace(-2.95, 3.05, 13, F64).requiresGrad_(true);
  for (const [name, activation] of activations) gradcheck(projectedLoss(() => activation.forward(x)), [x], { what: name });
  assert.ok(x.requiresGrad);
  x.dispose();
});

test("the checker itself catches a wrong gradient", () => {
  const x = tensor([0.5, -1.5, 2], { ...F64, requiresGrad: true });
  // d/dx of x * stopgrad(x) is x for autograd but 2x numerically.
  assert.throws(() => gradcheck(() => tidy(() => x.mul(x.detach()).sum()), [x]), /gradient of input 0\[0\]: got 0\.5, expected (1|0\.99999)/);
  x.dispose();
});
