// Each layer's forward against a float64 JS reference, its parameter names/shapes, and its default init.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  nn, Linear, Embedding, LayerNorm, RMSNorm, GroupNorm, Conv2d, Conv3d, Dropout, Identity, GELU, QuickGELU, SiLU, ReLU, Tanh, Sigmoid,
  Tensor, tidy, tensor, randn, manualSeed, linspace, noGrad, liveTensorCount,
} from "../../src/index.js";
import { assertClose, values, f64, conv3dReference, geluExact, geluTanh, sigmoid } from "./helpers.js";

const F64 = { dtype: "float64" } as const;

/** Sets every parameter of a module to random values (so affine terms are exercised). */
function randomize(module: nn.Module): void {
  noGrad(() => {
    for (const p of module.parameters()) tidy(() => p.copy_(randn(p.shape, { dtype: p.dtype })));
  });
}

function shapes(module: nn.Module): [string, number[]][] {
  return module.namedParameters().map(([name, p]) => [name, p.shape]);
}

test("Linear: names, shapes, forward = x W^T + b", () => {
  manualSeed(0);
  const linear = new Linear(3, 4, F64);
  assert.deepEqual(shapes(linear), [["weight", [4, 3]], ["bias", [4]]]);
  assert.deepEqual(shapes(new Linear(3, 4, { bias: false })), [["weight", [4, 3]]]);
  const x = randn([2, 5, 3], F64);
  const out = tidy(() => values(linear.forward(x)));
  const [xs, w, b] = [values(x), values(linear.weight), values(linear.bias!)];
  const expected: number[] = [];
  for (let row = 0; row < 10; row++)
    for (let o = 0; o < 4; o++) {
      let acc = b[o];
      for (let i = 0; i < 3; i++) acc += xs[row * 3 + i] * w[o * 3 + i];
      expected.push(acc);
    }
  assertClose(out, expected, 1e-12, "linear");
  x.dispose();
  linear.dispose();
});

test("Linear and Conv init: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))", () => {
  manualSeed(3);
  const linear = new Linear(64, 200);
  const bound = 1 / 8;
  const w = values(linear.weight);
  assert.ok(w.every((v) => Math.abs(v) <= bound));
  assert.ok(Math.max(...w) > 0.99 * bound && Math.min(...w) < -0.99 * bound, "fills the whole interval");
  const mean = w.reduce((a, v) => a + v, 0) / w.length;
  const variance = w.reduce((a, v) => a + (v - mean) ** 2, 0) / w.length;
  assertClose([mean, variance], [0, bound ** 2 / 3], 0.002, "uniform moments");
  assert.ok(values(linear.bias!).every((v) => Math.abs(v) <= bound));
  const conv = new Conv2d(4, 8, 3, { groups: 2 });
  const convBound = 1 / Math.sqrt((4 / 2) * 9);
  const cw = values(conv.weight);
  assert.ok(cw.every((v) => Math.abs(v) <= convBound) && Math.max(...cw.map(Math.abs)) > 0.9 * convBound);
  assert.ok(values(conv.bias!).every((v) => Math.abs(v) <= convBound));
  linear.dispose();
  conv.dispose();
});

test("Embedding: N(0,1) init, padding row zero, lookup and padding gets no gradient", () => {
  manualSeed(4);
  const big = new Embedding(500, 100);
  const w = values(big.weight);
  const mean = w.reduce((a, v) => a + v, 0) / w.length;
  const variance = w.reduce((a, v) => a + (v - mean) ** 2, 0) / w.length;
  assertClose([mean, variance], [0, 1], 0.02, "normal moments");
  big.dispose();
  const embedding = new Embedding(6, 3, { paddingIdx: -1, dtype: "float64" });
  assert.equal(embedding.paddingIdx, 5);
  assert.deepEqual(values(embedding.weight.select(0, 5)), [0, 0, 0]);
  const ids = tensor([[0, 5, 2], [2, 2, 1]], { dtype: "int64" });
  const out = embedding.forward(ids);
  assert.deepEqual(out.shape, [2, 3, 3]);
  const table = values(embedding.weight);
  const expected = [0, 5, 2, 2, 2, 1].flatMap((i) => table.slice(i * 3, i * 3 + 3));
  assert.deepEqual(values(out), expected);
  out.sum().backward();
  const grad = embedding.weight.grad!;
  // Row 2 is used three times, row 5 (padding) gets nothing.
  assert.deepEqual(values(grad), [1, 1, 1, 1, 1, 1, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(() => new Embedding(6, 3, { paddingIdx: 6 }), /paddingIdx 6 is outside \[-6, 6\)/);
  for (const t of [grad, ids, out]) t.dispose();
  embedding.dispose();
});

function layerNormReference(x: number[], groupSize: number, w: number[] | null, b: number[] | null, eps: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < x.length; start += groupSize) {
    const group = x.slice(start, start + groupSize);
    const mean = group.reduce((a, v) => a + v, 0) / groupSize;
    const variance = group.reduce((a, v) => a + (v - mean) ** 2, 0) / groupSize;
    group.forEach((v, i) => out.push(((v - mean) / Math.sqrt(variance + eps)) * (w ? w[i] : 1) + (b ? b[i] : 0)));
  }
  return out;
}

test("LayerNorm: ones/zeros init, normalises the trailing dims", () => {
  manualSeed(5);
  const norm = new LayerNorm([2, 3], { ...F64, eps: 1e-3 });
  assert.deepEqual(shapes(norm), [["weight", [2, 3]], ["bias", [2, 3]]]);
  assert.deepEqual(values(norm.weight!), [1, 1, 1, 1, 1, 1]);
  assert.deepEqual(values(norm.bias!), [0, 0, 0, 0, 0, 0]);
  randomize(norm);
  const x = randn([4, 2, 3], F64);
  const out = tidy(() => values(norm.forward(x)));
  assertClose(out, layerNormReference(values(x), 6, values(norm.weight!), values(norm.bias!), 1e-3), 1e-12, "layer norm");
  const plain = new LayerNorm(3, { elementwiseAffine: false, ...F64 });
  assert.deepEqual(shapes(plain), []);
  assertClose(tidy(() => values(plain.forward(x))), layerNormReference(values(x), 3, null, null, 1e-5), 1e-12, "no affine");
  assert.deepEqual(shapes(new LayerNorm(3, { bias: false })), [["weight", [3]]]);
  x.dispose();
  norm.dispose();
});

test("RMSNorm: weight ones, x / sqrt(mean(x^2) + eps) * w", () => {
  manualSeed(6);
  const norm = new RMSNorm(4, F64);
  assert.equal(norm.eps, 1e-6);
  assert.deepEqual(values(norm.weight), [1, 1, 1, 1]);
  randomize(norm);
  const x = randn([3, 4], F64);
  const xs = values(x);
  const w = values(norm.weight);
  const expected: number[] = [];
  for (let r = 0; r < 3; r++) {
    const row = xs.slice(r * 4, r * 4 + 4);
    const scale = 1 / Math.sqrt(row.reduce((a, v) => a + v * v, 0) / 4 + 1e-6);
    row.forEach((v, i) => expected.push(v * scale * w[i]));
  }
  assertClose(tidy(() => values(norm.forward(x))), expected, 1e-12, "rms norm");
  // bf16 input: normalised in float32, cast back to bf16, then multiplied by the weight (HF Llama order).
  const half = new RMSNorm(4, { dtype: "bfloat16", eps: 1e-5 });
  const xb = x.to("bfloat16");
  const out = half.forward(xb);
  assert.equal(out.dtype, "bfloat16");
  assertClose(values(out), expected.map((v, i) => v / w[i % 4]), 2e-2, "bf16 rms norm");
  for (const t of [x, xb, out]) t.dispose();
  norm.dispose();
  half.dispose();
});

test("GroupNorm: per-group statistics over [N, C, H, W], per-channel affine", () => {
  manualSeed(7);
  const norm = new GroupNorm(2, 4, F64);
  assert.deepEqual(shapes(norm), [["weight", [4]], ["bias", [4]]]);
  randomize(norm);
  const x = randn([2, 4, 3, 2], F64);
  const xs = values(x);
  const [w, b] = [values(norm.weight!), values(norm.bias!)];
  const expected: number[] = [];
  const groupSize = 2 * 6;
  for (let start = 0; start < xs.length; start += groupSize) {
    const normalised = layerNormReference(xs.slice(start, start + groupSize), groupSize, null, null, 1e-5);
    const firstChannel = ((start / groupSize) % 2) * 2;
    normalised.forEach((v, i) => {
      const c = firstChannel + Math.floor(i / 6);
      expected.push(v * w[c] + b[c]);
    });
  }
  assertClose(tidy(() => values(norm.forward(x))), expected, 1e-12, "group norm");
  assert.throws(() => new GroupNorm(3, 4), /not divisible/);
  x.dispose();
  norm.dispose();
});

test("Conv2d: stride, padding, dilation, groups against a direct convolution", () => {
  manualSeed(8);
  const cases = [
    { kernel: [3, 3], stride: 1, padding: 0, dilation: 1, groups: 1, bias: true },
    { kernel: [3, 2], stride: [2, 1], padding: [1, 2], dilation: 1, groups: 2, bias: false },
    { kernel: [2, 2], stride: 1, padding: 1, dilation: [2, 1], groups: 1, bias: true },
  ];
  for (const c of cases) {
    const conv = new Conv2d(4, 6, c.kernel, { ...c, ...F64 });
    assert.deepEqual(conv.weight.shape, [6, 4 / c.groups, ...c.kernel]);
    const x = randn([2, 4, 7, 6], F64);
    const out = conv.forward(x);
    const expand = (v: number | number[]) => (typeof v === "number" ? [v, v] : v);
    const [stride, padding, dilation] = [expand(c.stride), expand(c.padding), expand(c.dilation)];
    const reference = conv3dReference(values(x), [2, 4, 1, 7, 6], values(conv.weight), [6, 4 / c.groups, 1, ...c.kernel], c.bias ? values(conv.bias!) : null, {
      stride: [1, ...stride], padBefore: [0, ...padding], padAfter: [0, ...padding], dilation: [1, ...dilation], groups: c.groups,
    });
    assert.deepEqual(out.shape, [2, 6, ...reference.shape.slice(3)], JSON.stringify(c));
    assertClose(values(out), reference.out, 1e-12, `conv2d ${JSON.stringify(c)}`);
    x.dispose();
    out.dispose();
    conv.dispose();
  }
});

test("Conv2d padding 'same' with an even kernel pads the extra pixel after, as PyTorch", () => {
  manualSeed(9);
  const conv = new Conv2d(2, 3, [2, 3], { padding: "same", ...F64 });
  const x = randn([1, 2, 5, 4], F64);
  const before = liveTensorCount();
  const out = conv.forward(x);
  assert.equal(liveTensorCount(), before + 1, "the padded temporary is freed");
  assert.deepEqual(out.shape, [1, 3, 5, 4]);
  const reference = conv3dReference(values(x), [1, 2, 1, 5, 4], values(conv.weight), [3, 2, 1, 2, 3], values(conv.bias!), {
    stride: [1, 1, 1], padBefore: [0, 0, 1], padAfter: [0, 1, 1], dilation: [1, 1, 1], groups: 1,
  });
  assertClose(values(out), reference.out, 1e-12, "same padding");
  assert.throws(() => new Conv2d(2, 3, 3, { padding: "same", stride: 2 }), /needs stride 1/);
  x.dispose();
  out.dispose();
  conv.dispose();
});

test("Conv3d: Qwen2-VL style temporal patches and a general case", () => {
  manualSeed(10);
  const patch = new Conv3d(3, 5, [2, 2, 2], { stride: [2, 2, 2], bias: false, ...F64 });
  assert.deepEqual(shapes(patch), [["weight", [5, 3, 2, 2, 2]]]);
  const general = new Conv3d(2, 4, [2, 3, 1], { stride: [1, 2, 1], padding: [1, 0, 1], groups: 2, ...F64 });
  for (const [conv, xShape, wShape, o] of [
    [patch, [2, 3, 4, 4, 2], [5, 3, 2, 2, 2], { stride: [2, 2, 2], pad: [0, 0, 0], groups: 1 }],
    [general, [1, 2, 3, 5, 2], [4, 1, 2, 3, 1], { stride: [1, 2, 1], pad: [1, 0, 1], groups: 2 }],
  ] as const) {
    const x = randn([...xShape], F64);
    const out = conv.forward(x);
    const reference = conv3dReference(values(x), [...xShape], values(conv.weight), [...wShape], conv.bias ? values(conv.bias) : null, {
      stride: [...o.stride], padBefore: [...o.pad], padAfter: [...o.pad], dilation: [1, 1, 1], groups: o.groups,
    });
    assert.deepEqual(out.shape, reference.shape);
    assertClose(values(out), reference.out, 1e-12, "conv3d");
    x.dispose();
    out.dispose();
  }
  patch.dispose();
  general.dispose();
});

test("activations against their formulas, and the hidden_act names", () => {
  const x = linspace(-3, 3, 61, F64);
  const xs = values(x);
  const relu = (v: number) => Math.max(v, 0);
  const cases: [nn.Module & { forward(x: Tensor): Tensor }, (v: number) => number][] = [
    [new GELU(), geluExact],
    [new GELU({ approximate: "tanh" }), geluTanh],
    [new GELU("tanh"), geluTanh],
    [new QuickGELU(), (v) => v * sigmoid(1.702 * v)],
    [new SiLU(), (v) => v * sigmoid(v)],
    [new ReLU(), relu],
    [new Tanh(), Math.tanh],
    [new Sigmoid(), sigmoid],
    [new Identity(), (v) => v],
  ];
  for (const [module, formula] of cases) {
    assertClose(tidy(() => values(module.forward(x))), xs.map(formula), 1e-10, module.constructor.name);
  }
  const byName: Record<string, (v: number) => number> = {
    gelu: geluExact,
    gelu_new: geluTanh,
    gelu_pytorch_tanh: geluTanh,
    // transformers' FastGELUActivation: 0.5 x (1 + tanh(0.7978845608 x (1 + 0.044715 x^2)))
    gelu_fast: (v) => 0.5 * v * (1 + Math.tanh(0.7978845608 * v * (1 + 0.044715 * v * v))),
    quick_gelu: (v) => v * sigmoid(1.702 * v),
    silu: (v) => v * sigmoid(v),
    swish: (v) => v * sigmoid(v),
    relu,
    tanh: Math.tanh,
    sigmoid,
  };
  for (const [name, formula] of Object.entries(byName)) {
    assertClose(tidy(() => values(nn.activation(name).forward(x))), xs.map(formula), 1e-9, name);
    assertClose(tidy(() => values(nn.activationFn(name)(x))), xs.map(formula), 1e-9, `${name} (fn)`);
  }
  assert.throws(() => nn.activation("mish"), /unknown activation 'mish' \(hidden_act\); known: gelu, .*quick_gelu.*silu, swish/);
  x.dispose();
});

test("Dropout rejects bad probabilities; p = 0 and eval mode are identity", () => {
  assert.throws(() => new Dropout(1.5), /\[0, 1\]/);
  const x = randn([50]);
  const keepAll = new Dropout(0);
  assert.deepEqual(tidy(() => values(keepAll.forward(x))), values(x));
  const eval_ = new Dropout(0.9).eval();
  assert.deepEqual(tidy(() => values(eval_.forward(x))), values(x));
  x.dispose();
});

test("init: kaiming, xavier, truncated normal follow torch.nn.init's bounds and moments", () => {
  manualSeed(11);
  const t = tensor(new Float64Array(200 * 50), { shape: [200, 50] });
  const stats = () => {
    const v = values(t);
    const mean = v.reduce((a, x) => a + x, 0) / v.length;
    const variance = v.reduce((a, x) => a + (x - mean) ** 2, 0) / v.length;
    return { min: Math.min(...v), max: Math.max(...v), mean, variance };
  };
  // relu gain sqrt(2), fan_in 50: bound sqrt(3) * sqrt(2) / sqrt(50)
  nn.init.kaimingUniform_(t, { nonlinearity: "relu" });
  let s = stats();
  const kaimingBound = Math.sqrt(6 / 50);
  assert.ok(s.max <= kaimingBound && s.max > 0.99 * kaimingBound && s.min >= -kaimingBound);
  nn.init.kaimingUniform_(t, { a: Math.sqrt(5) });
  assert.ok(stats().max <= 1 / Math.sqrt(50) && stats().max > 0.99 / Math.sqrt(50));
  nn.init.xavierUniform_(t, 2);
  s = stats();
  const xavierBound = 2 * Math.sqrt(6 / 250);
  assert.ok(s.max <= xavierBound && s.max > 0.99 * xavierBound);
  nn.init.truncNormal_(t, 1, 0.5, 0, 2);
  s = stats();
  assert.ok(s.min >= 0 && s.max <= 2);
  // N(1, 0.5^2) truncated at +-2 sigma: variance 0.25 * (1 - 2 * 2 phi(2) / (2 Phi(2) - 1)) = 0.25 * 0.7737
  assertClose([s.mean, s.variance], [1, 0.25 * 0.77374], 0.01, "truncated normal moments");
  nn.init.zeros_(t);
  assert.deepEqual(stats(), { min: 0, max: 0, mean: 0, variance: 0 });
  nn.init.skipRandomInit(() => nn.init.normal_(t));
  assert.equal(stats().max, 0, "skipped");
  assert.throws(() => nn.init.xavierUniform_(tensor([1, 2])), /at least 2 dims, got shape \[2\]/);
  t.dispose();
});

test("layers honour dtype options", () => {
  const layers = [new Linear(2, 3, { dtype: "bf16" }), new Embedding(4, 2, { dtype: "float16" }), new LayerNorm(2, { dtype: "float64" }), new Conv3d(1, 2, 1, { dtype: "bfloat16" })];
  assert.deepEqual(layers.map((l) => l.parameters()[0].dtype), ["bfloat16", "float16", "float64", "bfloat16"]);
  for (const l of layers) l.dispose();
});
