// Autograd: finite-difference gradient checks (float64) of every differentiable op, and the autograd API.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  F, autograd, cat, enableGrad, gradcheck, isGradEnabled, noGrad, ones, stack, tensor, tidy, where, zeros, type Tensor,
} from "../../src/torch/index.js";
import { DEVICE, assertClose, assertThrowsWith, f64, f64Flat, i64, randomF64, uniformArray } from "../helpers.js";

const on = { device: DEVICE };
/** A float64 leaf on DEVICE that requires grad, with seeded values in [low, high). */
const leaf = (shape: number[], seed: number, low = -1, high = 1) => randomF64(shape, seed, low, high, { requiresGrad: true });
/** Runs gradcheck inside tidy and asserts it passed (gradcheck throws with the worst element otherwise). */
function check(label: string, fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], options: { atol?: number; rtol?: number; eps?: number } = {}): void {
  tidy(() => {
    const result = gradcheck(fn, inputs, options);
    assert.ok(result.ok && result.checked > 0, `${label}: ${JSON.stringify(result.worst)}`);
  });
}

test("gradcheck catches a wrong gradient and names the worst element", () => {
  const x = leaf([2, 3], 1, 0.5, 2);
  // x * detach(x) has true derivative 2x but autograd sees only x.
  const wrong = (t: Tensor) => t.mul(t.detach());
  const error = assertThrowsWith(() => gradcheck(wrong, [x]), "gradcheck", "worst: input 0 at [");
  assert.match(error.message, /analytic .* numeric/);
  const result = gradcheck(wrong, [x], { raiseException: false });
  assert.equal(result.ok, false);
  assert.equal(result.checked, 6);
  assert.equal(result.details.length, 6);
  assert.ok(result.maxError > 0.4, `maxError ${result.maxError}`);
  assert.equal(gradcheck((t) => t.mul(t), [x]).ok, true);
  assertThrowsWith(() => gradcheck((t) => t.mul(2), [randomF64([2], 1).to("float32").requiresGrad_()]), "gradcheck", "float64");
  assertThrowsWith(() => gradcheck((t) => t.mul(2), [randomF64([2], 1)]), "no input requires grad");
  // Inputs that do not require grad (targets, masks) pass through unchanged and are not checked.
  const constant = randomF64([2, 3], 2);
  assert.equal(gradcheck((a, b) => a.mul(b), [x, constant]).checked, 6);
});

test("gradcheck: elementwise arithmetic with broadcasting and scalars", () => {
  const a = leaf([2, 3], 10);
  const b = leaf([3], 11, 0.5, 1.5);
  check("add", (x, y) => x.add(y, 0.7), [a, b]);
  check("sub", (x, y) => x.sub(y), [a, b]);
  check("mul", (x, y) => x.mul(y), [a, b]);
  check("div", (x, y) => x.div(y), [a, b]);
  check("scalar ops", (x) => x.mul(3).add(1).div(2).rsub(5).neg(), [a]);
  check("pow scalar", (x) => x.pow(3), [a]);
  check("pow tensor", (x, y) => y.pow(x), [a, b]);
  check("pow fractional", (y) => y.pow(1.7), [b]);
  check("minimum/maximum", (x, y) => x.minimum(y.sub(0.5)).add(x.maximum(y.neg())), [leaf([3], 12), leaf([3], 13, 2, 3)]);
});

test("gradcheck: unary math", () => {
  const positive = leaf([2, 3], 20, 0.3, 2);
  const any = leaf([2, 3], 21, -2, 2);
  check("exp", (x) => x.exp(), [any]);
  check("log", (x) => x.log(), [positive]);
  check("log1p", (x) => x.log1p(), [positive]);
  check("sqrt", (x) => x.sqrt(), [positive]);
  check("rsqrt", (x) => x.rsqrt(), [positive]);
  check("reciprocal", (x) => x.reciprocal(), [positive]);
  check("square", (x) => x.square(), [any]);
  check("sin/cos", (x) => x.sin().mul(x.cos()), [any]);
  check("erf", (x) => x.erf(), [any]);
  // abs and clamp away from their kinks (no value within eps of 0 or of the bounds).
  check("abs", (x) => x.abs(), [f64([-1.5, -0.4, 0.3, 2], { requiresGrad: true })]);
  check("clamp", (x) => x.clamp(-0.5, 0.6), [f64([-1.5, -0.4, 0.3, 2, 0.59], { requiresGrad: true })]);
  check("clampMin", (x) => x.clampMin(0.1), [f64([-1, 0.4, 2], { requiresGrad: true })]);
});

test("gradcheck: activations", () => {
  const x = leaf([3, 4], 30, -3, 3);
  check("gelu", (t) => F.gelu(t), [x]);
  check("gelu tanh", (t) => F.gelu(t, "tanh"), [x]);
  check("quickGelu", (t) => F.quickGelu(t), [x]);
  check("silu", (t) => F.silu(t), [x]);
  check("sigmoid", (t) => F.sigmoid(t), [x]);
  check("tanh", (t) => F.tanh(t), [x]);
  check("softplus", (t) => F.softplus(t), [x]);
  check("logSigmoid", (t) => F.logSigmoid(t), [x]);
  check("relu", (t) => F.relu(t), [f64([-2, -0.3, 0.2, 1.5], { requiresGrad: true })]);
  check("dropout eval", (t) => F.dropout(t, 0.5, false), [x]);
});

test("gradcheck: reductions, softmax and logSoftmax", () => {
  const x = leaf([3, 4], 40);
  check("sum", (t) => t.sum(), [x]);
  check("sum dim", (t) => t.sum(1, true), [x]);
  check("mean", (t) => t.mean(0), [x]);
  check("var", (t) => t.var(1), [x]);
  check("var biased", (t) => t.var(null, false), [x]);
  check("std", (t) => t.std(0), [x]);
  check("prod", (t) => t.prod(1), [leaf([2, 3], 41, 0.5, 1.5)]);
  check("max values", (t) => t.max(1).values, [x]);
  check("min values", (t) => t.min(0).values, [x]);
  check("amax", (t) => t.amax(1), [x]);
  check("max all", (t) => t.max(), [x]);
  check("topk values", (t) => t.topk(2, 1).values, [x]);
  check("sort values", (t) => t.sort(1, true).values, [x]);
  check("cumsum", (t) => t.cumsum(1), [x]);
  check("cumprod", (t) => t.cumprod(0), [leaf([3, 2], 42, 0.5, 1.5)]);
  check("logsumexp", (t) => t.logsumexp(1), [x]);
  check("norm", (t) => t.norm(2, 1), [x]);
  check("softmax", (t) => t.softmax(1), [x]);
  check("softmax dim 0", (t) => F.softmax(t, 0), [x]);
  check("logSoftmax", (t) => t.logSoftmax(-1), [x]);
});

test("gradcheck: matmul, mm, bmm, addmm, linear, einsum", () => {
  const a = leaf([2, 3], 50);
  const b = leaf([3, 4], 51);
  check("matmul", (x, y) => x.matmul(y), [a, b]);
  check("matmul vector", (x, y) => x.matmul(y), [leaf([3], 52), b]);
  check("matmul broadcast", (x, y) => x.matmul(y), [leaf([2, 2, 3], 53), b]);
  check("mm", (x, y) => x.mm(y), [a, b]);
  check("bmm", (x, y) => x.bmm(y), [leaf([2, 2, 3], 54), leaf([2, 3, 2], 55)]);
  check("addmm", (c, x, y) => F.addmm(c, x, y, 0.5, 1.5), [leaf([2, 4], 56), a, b]);
  check("linear", (x, w, bias) => F.linear(x, w, bias), [leaf([2, 3], 57), leaf([4, 3], 58), leaf([4], 59)]);
  check("linear no bias", (x, w) => F.linear(x, w), [leaf([1, 2, 3], 57), leaf([2, 3], 58)]);
  check("einsum", (x, y) => F.einsum("ij,jk->ki", x, y), [a, b]);
});

test("gradcheck: conv2d and conv3d (input, weight, bias)", () => {
  check("conv2d", (x, w, b) => F.conv2d(x, w, b, { stride: [2, 1], padding: 1 }), [leaf([1, 2, 4, 3], 60), leaf([2, 2, 2, 2], 61), leaf([2], 62)]);
  check("conv2d groups dilation", (x, w) => F.conv2d(x, w, null, { groups: 2, dilation: 2, padding: 1 }), [leaf([1, 2, 3, 3], 63), leaf([4, 1, 2, 2], 64)]);
  check("conv3d", (x, w, b) => F.conv3d(x, w, b, { stride: 2, padding: [1, 0, 0] }), [leaf([1, 2, 2, 3, 3], 65), leaf([2, 2, 2, 2, 2], 66), leaf([2], 67)]);
});

test("gradcheck: layerNorm, groupNorm, rmsNorm", () => {
  check("layerNorm", (x, w, b) => F.layerNorm(x, [4], w, b), [leaf([2, 4], 70, -2, 2), leaf([4], 71, 0.5, 1.5), leaf([4], 72)]);
  check("layerNorm 2-d shape", (x) => F.layerNorm(x, [2, 3]), [leaf([2, 2, 3], 73, -2, 2)]);
  check("groupNorm", (x, w, b) => F.groupNorm(x, 2, w, b), [leaf([2, 4, 3], 74, -2, 2), leaf([4], 75, 0.5, 1.5), leaf([4], 76)]);
  check("rmsNorm", (x, w) => F.rmsNorm(x, w), [leaf([2, 5], 77, -2, 2), leaf([5], 78, 0.5, 1.5)]);
});

test("gradcheck: embedding (weight), losses, normalize, cosineSimilarity", () => {
  const weight = leaf([5, 3], 80);
  check("embedding", (w) => F.embedding(w, i64([[0, 3, 3], [4, 1, 0]])), [weight]);
  // The row at paddingIdx gets no gradient (autograd and finite differences must agree on that only if the
  // forward ignores it; it does not, so check the gradient directly).
  tidy(() => {
    const [g] = autograd.grad(F.embedding(weight, i64([0, 2, 0]), 0).sum(), weight);
    assertClose(g!, [[0, 0, 0], [0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]]);
  });
  const logits = leaf([4, 3], 81, -2, 2);
  const targets = i64([2, -100, 0, 1]);
  check("crossEntropy", (x) => F.crossEntropy(x, targets), [logits]);
  check("crossEntropy smoothing + ignoreIndex", (x) => F.crossEntropy(x, targets, { labelSmoothing: 0.15 }), [logits]);
  check("crossEntropy own ignoreIndex, sum", (x) => F.crossEntropy(x, i64([2, 1, 0, 1]), { ignoreIndex: 1, reduction: "sum" }), [logits]);
  check("crossEntropy weights", (x) => F.crossEntropy(x, targets, { weight: f64([0.5, 2, 1]), labelSmoothing: 0.1 }), [logits]);
  check("crossEntropy [N, C, L]", (x) => F.crossEntropy(x, i64([[1, 0], [2, -100]]), { labelSmoothing: 0.1 }), [leaf([2, 3, 2], 82)]);
  check("nllLoss", (x) => F.nllLoss(x.logSoftmax(1), targets), [logits]);
  const probabilities = f64([0.9, 0.1, 0.5, 1, 0, 0.3]);
  check("BCE with logits", (x) => F.binaryCrossEntropyWithLogits(x, probabilities), [leaf([6], 83, -3, 3)]);
  check("BCE with logits, weight and posWeight", (x) => F.binaryCrossEntropyWithLogits(x, probabilities.view(2, 3), { weight: f64([1, 2, 0.5]), posWeight: f64([3, 1, 0.2]) }), [leaf([2, 3], 84, -3, 3)]);
  check("BCE wrt target", (t) => F.binaryCrossEntropyWithLogits(f64([0.3, -1, 2]), t), [leaf([3], 85, 0.1, 0.9)]);
  // l1 away from its kink: |x - y| with no difference within eps of 0.
  const y = f64([0.5, -0.5, 1, 0]);
  check("l1Loss", (x) => F.l1Loss(x, y), [f64([1.2, -1.7, 0.4, 0.3], { requiresGrad: true })]);
  check("l1Loss both", (x, t) => F.l1Loss(x, t, "sum"), [f64([1.2, -1.7, 0.4, 0.3], { requiresGrad: true }), f64([0.5, -0.5, 1, 0], { requiresGrad: true })]);
  check("mseLoss", (x, t) => F.mseLoss(x, t), [leaf([2, 3], 86), leaf([2, 3], 87)]);
  check("smoothL1Loss", (x) => F.smoothL1Loss(x, zeros([4], { ...on, dtype: "float64" })), [f64([2, -0.5, 0.3, -3], { requiresGrad: true })]);
  check("normalize", (x) => F.normalize(x), [leaf([3, 4], 88)]);
  check("normalize p=1 dim 0", (x) => F.normalize(x, 1, 0), [leaf([3, 2], 89, 0.2, 1)]);
  check("cosineSimilarity", (a, b) => F.cosineSimilarity(a, b), [leaf([3, 4], 90), leaf([3, 4], 91)]);
});

test("gradcheck: scaledDotProductAttention (q, k, v), causal, masks, grouped-query heads", () => {
  const q = leaf([1, 2, 3, 2], 100);
  const k = leaf([1, 2, 3, 2], 101);
  const v = leaf([1, 2, 3, 2], 102);
  check("sdpa", (a, b, c) => F.scaledDotProductAttention(a, b, c), [q, k, v]);
  check("sdpa causal", (a, b, c) => F.scaledDotProductAttention(a, b, c, { isCausal: true }), [q, k, v]);
  const boolMask = tensor([[true, false, true], [true, true, false], [false, true, true]], on);
  check("sdpa bool mask", (a, b, c) => F.scaledDotProductAttention(a, b, c, { mask: boolMask }), [q, k, v]);
  check("sdpa additive mask (and its gradient)", (a, b, c, m) => F.scaledDotProductAttention(a, b, c, { mask: m }), [q, k, v, leaf([3, 3], 103)]);
  check("sdpa grouped-query", (a, b, c) => F.scaledDotProductAttention(a, b, c, { scale: 0.7 }), [leaf([1, 4, 2, 2], 104), leaf([1, 2, 3, 2], 105), leaf([1, 2, 3, 2], 106)]);
  check("sdpa reference", (a, b, c) => F.scaledDotProductAttentionReference(a, b, c, { isCausal: true }), [q, k, v]);
});

test("gradcheck: shape and indexing ops", () => {
  const x = leaf([2, 3], 110);
  const y = leaf([2, 3], 111);
  check("gather", (t) => t.gather(1, i64([[2, 0, 2], [1, 1, 0]])), [x]);
  check("indexSelect (repeated indices accumulate)", (t) => t.indexSelect(1, i64([2, 0, 2])), [x]);
  check("cat", (a, b) => cat([a, b.narrow(1, 0, 2)], 1), [x, y]);
  check("stack", (a, b) => stack([a, b], 1), [x, y]);
  check("split/chunk", (t) => t.split([1, 2], 1)[1].mul(t.chunk(3, 1)[0]), [x]);
  check("permute/transpose/reshape", (t) => t.permute(1, 0).reshape(6).view(2, 3).transpose(0, 1), [x]);
  check("expand/repeat", (t) => t.unsqueeze(0).expand(2, 2, 3).mul(t.repeat(2, 1, 1)), [x]);
  check("narrow/slice/select", (t) => t.narrow(1, 1, 2).slice(1, 0, null, 1).select(0, 1), [x]);
  check("where", (a, b) => where(tensor([[true, false, true], [false, false, true]], on), a, b), [x, y]);
  check("maskedFill", (t) => t.maskedFill(tensor([true, false, false], on), 2), [x]);
  check("scatter src", (a, s) => a.scatter(1, i64([[0], [2]]), s), [x, leaf([2, 1], 112)]);
  check("index", (t) => t.index([i64([1, 0, 1]), i64([2, 2, 0])]), [x]);
  check("flip/roll", (t) => t.flip(1).roll(1, 0), [x]);
  const image = leaf([1, 1, 3, 4], 113);
  check("pad constant", (t) => F.pad(t, [1, 2, 0, 1], "constant", 0.5), [image]);
  check("pad reflect", (t) => F.pad(t, [2, 1, 1, 2], "reflect"), [image]);
  check("pad replicate", (t) => F.pad(t, [1, 1, 2, 0], "replicate"), [image]);
  check("interpolate bilinear up", (t) => F.interpolate(t, { size: [5, 6], mode: "bilinear" }), [image]);
  check("interpolate bilinear down, align corners", (t) => F.interpolate(t, { size: [2, 3], mode: "bilinear", alignCorners: true }), [image]);
  check("interpolate bicubic", (t) => F.interpolate(t, { size: [4, 3], mode: "bicubic" }), [image]);
  check("interpolate nearest", (t) => F.interpolate(t, { size: [5, 2], mode: "nearest" }), [image]);
});

// ---- the autograd API ----
test("backward accumulates into .grad; zeroGrad clears it; retainGraph allows a second backward", () => {
  const x = f64([1, 2, 3], { requiresGrad: true });
  assert.equal(x.requiresGrad, true);
  assert.equal(x.isLeaf, true);
  assert.equal(x.grad, null);
  const y = x.mul(x).sum(); // dy/dx = 2x
  assert.equal(y.requiresGrad, true);
  assert.equal(y.isLeaf, false);
  y.backward(undefined, { retainGraph: true });
  assertClose(x.grad!, [2, 4, 6]);
  y.backward();
  assertClose(x.grad!, [4, 8, 12]);
  // Without retainGraph the graph's buffers are freed after the first backward.
  assertThrowsWith(() => y.backward(), "backward");
  x.zeroGrad();
  assert.equal(x.grad, null);
  const z = x.pow(3).sum();
  z.backward();
  assertClose(x.grad!, [3, 12, 27]);
  // A non-scalar output needs an explicit gradient.
  const w = x.mul(2);
  assertThrowsWith(() => w.backward(), "backward", "scalar");
  x.zeroGrad();
  w.backward(f64([1, 0, -1]));
  assertClose(x.grad!, [2, 0, -2]);
  x.grad = f64([7, 7, 7]);
  assertClose(x.grad!, [7, 7, 7]);
});

test("autograd.grad leaves .grad alone, supports createGraph (second order) and allowUnused", () => {
  const x = f64([0.5, -1, 2], { requiresGrad: true });
  const u = f64([1, 1, 1], { requiresGrad: true });
  const y = x.pow(3).sum();
  const [dx] = autograd.grad(y, x, { createGraph: true });
  assertClose(dx!, [0.75, 3, 12]);
  assert.equal(x.grad, null);
  const [d2x] = autograd.grad(dx!.sum(), x);
  assertClose(d2x!, [3, -6, 12]);
  const [gx, gu] = autograd.grad(x.mul(2).sum(), [x, u], { allowUnused: true });
  assertClose(gx!, [2, 2, 2]);
  assert.equal(gu, null);
  assertThrowsWith(() => autograd.grad(x.mul(2).sum(), [x, u]), "autogradGrad");
  const [weighted] = autograd.grad(x.mul(x), x, { gradOutputs: [f64([1, 2, 3])] });
  assertClose(weighted!, [1, -4, 12]);
});

test("noGrad records no history; enableGrad re-enables it; detach cuts the graph", () => {
  const x = f64([1, 2], { requiresGrad: true });
  assert.equal(isGradEnabled(), true);
  const inside = noGrad(() => {
    assert.equal(isGradEnabled(), false);
    const nested = enableGrad(() => x.mul(2));
    assert.equal(nested.requiresGrad, true);
    return x.mul(3).add(1);
  });
  assert.equal(isGradEnabled(), true);
  assert.equal(inside.requiresGrad, false);
  assert.equal(inside.isLeaf, true);
  assertThrowsWith(() => inside.sum().backward(), "backward");
  // The grad mode is restored even when fn throws.
  assert.throws(() => noGrad(() => { throw new Error("boom"); }), /boom/);
  assert.equal(isGradEnabled(), true);
  const d = x.mul(2).detach();
  assert.equal(d.requiresGrad, false);
  const loss = d.mul(x).sum(); // gradient flows only through x: d = 2x treated as constant
  loss.backward();
  assertClose(x.grad!, [2, 4]);
  // requiresGrad can be switched on a leaf.
  const w = ones([2], { ...on, dtype: "float64" });
  assert.equal(w.requiresGrad, false);
  w.requiresGrad = true;
  w.mul(f64([3, 4])).sum().backward();
  assertClose(w.grad!, [3, 4]);
  w.requiresGrad_(false);
  assert.equal(w.mul(2).requiresGrad, false);
});

test("gradients flow into leaves on DEVICE with the leaf's dtype and shape", () => {
  const w = f64Flat(uniformArray(6, 120), [2, 3], { requiresGrad: true });
  F.linear(f64([[1, 2, 3]]), w).sum().backward();
  const g = w.grad!;
  assert.deepEqual(g.shape, [2, 3]);
  assert.equal(g.dtype, "float64");
  assert.equal(g.device, w.device);
  assertClose(g, [[1, 2, 3], [1, 2, 3]]);
});
