// Neural-network ops (torch.nn.functional) against plain-JS float64 references written with direct loops.
import { test } from "node:test";
import assert from "node:assert/strict";
import { F, manualSeed, ones, tensor, type Tensor } from "../../src/torch/index.js";
import { DEVICE, assertClose, erf, f64, f64Flat, i64, matmulRef, softmaxRow, stridesOf, uniformArray, values } from "../helpers.js";

const on = { device: DEVICE };
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const logSoftmaxRow = (row: number[]) => softmaxRow(row).map(Math.log);

test("linear: x @ W^T + b", () => {
  const x = uniformArray(3 * 4, 1);
  const w = uniformArray(5 * 4, 2);
  const b = uniformArray(5, 3);
  const wT = Array.from({ length: 20 }, (_, i) => w[(i % 5) * 4 + Math.floor(i / 5)]);
  const xw = matmulRef(x, wT, 3, 4, 5);
  const tx = f64Flat(x, [3, 4]);
  const tw = f64Flat(w, [5, 4]);
  assertClose(F.linear(tx, tw, f64(b)), xw.map((v, i) => v + b[i % 5]), 1e-15, { shape: [3, 5] });
  assertClose(F.linear(tx, tw), xw, 1e-15);
  assertClose(F.linear(f64Flat(x, [1, 3, 4]), tw, f64(b)), xw.map((v, i) => v + b[i % 5]), 1e-15, { shape: [1, 3, 5] });
});

interface ConvSpec { stride: number[]; padding: number[]; dilation: number[]; groups: number }
/** Direct-loop N-d convolution (cross-correlation) of x [N, Cin, ...spatial] with w [Cout, Cin/groups, ...kernel]. */
function convRef(x: number[], xShape: number[], w: number[], wShape: number[], bias: number[] | null, spec: ConvSpec): { out: number[]; shape: number[] } {
  const [batch, cin, ...inSize] = xShape;
  const [cout, cinPerGroup, ...kernel] = wShape;
  const dims = inSize.length;
  const outSize = inSize.map((n, d) => Math.floor((n + 2 * spec.padding[d] - spec.dilation[d] * (kernel[d] - 1) - 1) / spec.stride[d]) + 1);
  const coutPerGroup = cout / spec.groups;
  const xStrides = stridesOf(xShape);
  const wStrides = stridesOf(wShape);
  const outShape = [batch, cout, ...outSize];
  const total = outShape.reduce((a, b) => a * b, 1);
  const out = new Array<number>(total).fill(0);
  const outStrides = stridesOf(outShape);
  const kernelCount = kernel.reduce((a, b) => a * b, 1);
  const kernelStrides = stridesOf(kernel);
  for (let flatOut = 0; flatOut < total; flatOut++) {
    const n = Math.floor(flatOut / outStrides[0]) % batch;
    const co = Math.floor(flatOut / outStrides[1]) % cout;
    const position = outSize.map((size, d) => Math.floor(flatOut / outStrides[2 + d]) % size);
    const group = Math.floor(co / coutPerGroup);
    let s = bias ? bias[co] : 0;
    for (let ci = 0; ci < cinPerGroup; ci++) {
      const inputChannel = group * cinPerGroup + ci;
      for (let k = 0; k < kernelCount; k++) {
        const tap = kernel.map((size, d) => Math.floor(k / kernelStrides[d]) % size);
        let inside = true;
        let xOffset = n * xStrides[0] + inputChannel * xStrides[1];
        for (let d = 0; d < dims; d++) {
          const i = position[d] * spec.stride[d] - spec.padding[d] + tap[d] * spec.dilation[d];
          if (i < 0 || i >= inSize[d]) inside = false;
          xOffset += i * xStrides[2 + d];
        }
        if (!inside) continue;
        let wOffset = co * wStrides[0] + ci * wStrides[1];
        for (let d = 0; d < dims; d++) wOffset += tap[d] * wStrides[2 + d];
        s += x[xOffset] * w[wOffset];
      }
    }
    out[flatOut] = s;
  }
  return { out, shape: outShape };
}

test("conv2d: stride, padding, dilation, groups, bias", () => {
  const cases: { xShape: number[]; wShape: number[]; spec: ConvSpec }[] = [
    { xShape: [2, 3, 5, 6], wShape: [4, 3, 3, 3], spec: { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 } },
    { xShape: [1, 2, 7, 5], wShape: [3, 2, 3, 2], spec: { stride: [2, 1], padding: [1, 2], dilation: [1, 1], groups: 1 } },
    { xShape: [1, 4, 6, 6], wShape: [6, 2, 2, 3], spec: { stride: [1, 2], padding: [1, 1], dilation: [2, 1], groups: 2 } },
  ];
  cases.forEach(({ xShape, wShape, spec }, k) => {
    const x = uniformArray(xShape.reduce((a, b) => a * b), 10 + k);
    const w = uniformArray(wShape.reduce((a, b) => a * b), 20 + k);
    const b = uniformArray(wShape[0], 30 + k);
    const ref = convRef(x, xShape, w, wShape, b, spec);
    const out = F.conv2d(f64Flat(x, xShape), f64Flat(w, wShape), f64(b), spec);
    assertClose(out, ref.out, 1e-13, { shape: ref.shape, message: `conv2d case ${k}` });
  });
  // Patch embedding as in ViT: kernel = stride = patch size, no bias.
  const x = uniformArray(1 * 3 * 8 * 8, 40);
  const w = uniformArray(5 * 3 * 4 * 4, 41);
  const ref = convRef(x, [1, 3, 8, 8], w, [5, 3, 4, 4], null, { stride: [4, 4], padding: [0, 0], dilation: [1, 1], groups: 1 });
  assertClose(F.conv2d(f64Flat(x, [1, 3, 8, 8]), f64Flat(w, [5, 3, 4, 4]), null, { stride: 4 }), ref.out, 1e-13, { shape: ref.shape });
});

test("conv3d: tiny video patch embedding and a padded case", () => {
  const cases: { xShape: number[]; wShape: number[]; spec: ConvSpec }[] = [
    { xShape: [1, 2, 4, 4, 4], wShape: [3, 2, 2, 2, 2], spec: { stride: [2, 2, 2], padding: [0, 0, 0], dilation: [1, 1, 1], groups: 1 } },
    { xShape: [2, 2, 3, 4, 3], wShape: [2, 1, 3, 2, 2], spec: { stride: [1, 2, 1], padding: [1, 0, 1], dilation: [1, 1, 1], groups: 2 } },
  ];
  cases.forEach(({ xShape, wShape, spec }, k) => {
    const x = uniformArray(xShape.reduce((a, b) => a * b), 50 + k);
    const w = uniformArray(wShape.reduce((a, b) => a * b), 60 + k);
    const b = uniformArray(wShape[0], 70 + k);
    const ref = convRef(x, xShape, w, wShape, b, spec);
    const out = F.conv3d(f64Flat(x, xShape), f64Flat(w, wShape), f64(b), spec);
    assertClose(out, ref.out, 1e-13, { shape: ref.shape, message: `conv3d case ${k}` });
  });
});

/** Normalises each consecutive group of `size` values: (x - mean) / sqrt(biased var + eps). */
function normalizeGroups(x: number[], size: number, eps: number): number[] {
  const out: number[] = [];
  for (let start = 0; start < x.length; start += size) {
    const group = x.slice(start, start + size);
    const mean = sum(group) / size;
    const variance = sum(group.map((v) => (v - mean) ** 2)) / size;
    out.push(...group.map((v) => (v - mean) / Math.sqrt(variance + eps)));
  }
  return out;
}

test("layerNorm, groupNorm, rmsNorm", () => {
  const x = uniformArray(2 * 3 * 4, 80, -3, 3);
  const gamma = uniformArray(4, 81, 0.5, 1.5);
  const beta = uniformArray(4, 82);
  const normalized = normalizeGroups(x, 4, 1e-5);
  const t = f64Flat(x, [2, 3, 4]);
  assertClose(F.layerNorm(t, [4], f64(gamma), f64(beta)), normalized.map((v, i) => v * gamma[i % 4] + beta[i % 4]), 1e-12);
  assertClose(F.layerNorm(t, [4]), normalized, 1e-12);
  assertClose(F.layerNorm(t, [3, 4], null, null, 1e-6), normalizeGroups(x, 12, 1e-6), 1e-12);
  // groupNorm over [N=2, C=6, L=2] with 3 groups of 2 channels: statistics over 4 values; per-channel affine.
  const g = uniformArray(2 * 6 * 2, 83);
  const cw = uniformArray(6, 84, 0.5, 2);
  const cb = uniformArray(6, 85);
  const grouped = normalizeGroups(g, 4, 1e-5).map((v, i) => v * cw[Math.floor(i / 2) % 6] + cb[Math.floor(i / 2) % 6]);
  assertClose(F.groupNorm(f64Flat(g, [2, 6, 2]), 3, f64(cw), f64(cb)), grouped, 1e-12);
  assertClose(F.groupNorm(f64Flat(g, [2, 6, 1, 2]), 6), normalizeGroups(g, 2, 1e-5), 1e-12);
  // rmsNorm: x / sqrt(mean(x^2) + eps) * weight, in the input's precision for float64.
  const rms = (row: number[], eps: number) => row.map((v) => v / Math.sqrt(sum(row.map((u) => u * u)) / row.length + eps));
  const expected = [0, 1, 2, 3, 4, 5].flatMap((r) => rms(x.slice(r * 4, r * 4 + 4), 1e-6)).map((v, i) => v * gamma[i % 4]);
  const out = F.rmsNorm(t, f64(gamma));
  assert.equal(out.dtype, "float64");
  assertClose(out, expected, 1e-12);
  assertClose(F.rmsNorm(t, null, 1e-2), [0, 1, 2, 3, 4, 5].flatMap((r) => rms(x.slice(r * 4, r * 4 + 4), 1e-2)), 1e-12);
  // Half-precision inputs are normalised in float32 and cast back (transformers' LlamaRMSNorm).
  const bf = F.rmsNorm(f64Flat(x, [2, 3, 4]).to("bfloat16"), f64(gamma).to("bfloat16"));
  assert.equal(bf.dtype, "bfloat16");
  assertClose(bf, expected, 0.05);
});

test("activations: gelu (exact and tanh), quickGelu, silu, relu, sigmoid, tanh, softplus", () => {
  const v = [-6, -2.5, -1, -0.3, 0, 0.2, 0.7, 1.5, 3, 8];
  const x = f64(v);
  assertClose(F.gelu(x), v.map((u) => 0.5 * u * (1 + erf(u / Math.SQRT2))), 1e-14);
  const tanhGelu = (u: number) => 0.5 * u * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (u + 0.044715 * u ** 3)));
  assertClose(F.gelu(x, "tanh"), v.map(tanhGelu), 1e-14);
  assertClose(F.quickGelu(x), v.map((u) => u * sigmoid(1.702 * u)), 1e-14);
  assertClose(F.silu(x), v.map((u) => u * sigmoid(u)), 1e-14);
  assertClose(F.relu(x), v.map((u) => Math.max(u, 0)));
  assertClose(F.sigmoid(x), v.map(sigmoid), 1e-15);
  assertClose(F.tanh(x), v.map(Math.tanh), 1e-15);
  assertClose(F.softplus(x), v.map((u) => Math.log1p(Math.exp(u))), 1e-14);
  assertClose(F.logSigmoid(x), v.map((u) => Math.log(sigmoid(u))), 1e-14);
});

test("dropout: identity for p = 0 or eval; zeroes a fraction p and scales by 1/(1-p) when training", () => {
  const x = f64Flat(uniformArray(40000, 90, 0.5, 1.5), [200, 200]);
  const original = values(x);
  assertClose(F.dropout(x, 0, true), original, 0);
  assertClose(F.dropout(x, 0.4, false), original, 0);
  manualSeed(7);
  const p = 0.3;
  const out = values(F.dropout(x, p, true));
  let zeroed = 0;
  let maxScaleError = 0;
  out.forEach((y, i) => {
    if (y === 0) zeroed++;
    else maxScaleError = Math.max(maxScaleError, Math.abs(y - original[i] / (1 - p)));
  });
  const fraction = zeroed / out.length;
  assert.ok(Math.abs(fraction - p) < 0.015, `fraction zeroed ${fraction}, expected about ${p}`);
  assert.ok(maxScaleError < 1e-12, `kept values scaled by 1/(1-p): worst error ${maxScaleError}`);
  // The expectation is preserved: mean(dropout(x)) ~ mean(x).
  const meanIn = sum(original) / original.length;
  const meanOut = sum(out) / out.length;
  assert.ok(Math.abs(meanOut - meanIn) < 0.02, `mean ${meanOut} vs ${meanIn}`);
  assertClose(F.dropout(x.narrow(0, 0, 1), 1, true), new Array(200).fill(0));
  assert.throws(() => F.dropout(x, 1.5, true), /dropout probability/);
});

test("embedding looks up rows", () => {
  const weight = uniformArray(5 * 3, 100);
  const indices = [[4, 0, 2], [1, 1, 3]];
  const out = F.embedding(f64Flat(weight, [5, 3]), i64(indices));
  assertClose(out, indices.flat().flatMap((i) => weight.slice(i * 3, i * 3 + 3)), 0, { shape: [2, 3, 3] });
  assertClose(F.embedding(f64Flat(weight, [5, 3]), i64([0, 2]), 0), [...weight.slice(0, 3), ...weight.slice(6, 9)], 0);
  assertClose(F.oneHot(i64([2, 0]), 3), [[0, 0, 1], [1, 0, 0]]);
});

/** Reference cross entropy (torch semantics): per-sample (1-e) * nll + e * mean_c(-w_c logp_c); mean divides by sum of w[target]. */
function crossEntropyRef(logits: number[][], targets: number[], opts: { ignoreIndex?: number; smoothing?: number; weight?: number[]; reduction?: string }): number[] {
  const classes = logits[0].length;
  const weight = opts.weight ?? new Array(classes).fill(1);
  const eps = opts.smoothing ?? 0;
  const ignore = opts.ignoreIndex ?? -100;
  const losses: number[] = [];
  let weightTotal = 0;
  logits.forEach((row, i) => {
    if (targets[i] === ignore) {
      losses.push(0);
      return;
    }
    const logp = logSoftmaxRow(row);
    const nll = -weight[targets[i]] * logp[targets[i]];
    const smooth = -sum(logp.map((l, c) => weight[c] * l)) / classes;
    losses.push((1 - eps) * nll + eps * smooth);
    weightTotal += weight[targets[i]];
  });
  if (opts.reduction === "none") return losses;
  if (opts.reduction === "sum") return [sum(losses)];
  return [sum(losses) / weightTotal];
}

test("crossEntropy with ignoreIndex, labelSmoothing, class weights and reductions", () => {
  const logits = [0, 1, 2, 3, 4].map((r) => uniformArray(4, 110 + r, -3, 3));
  const targets = [2, -100, 0, 3, 1];
  const x = f64(logits);
  const y = i64(targets);
  assertClose(F.crossEntropy(x, y), crossEntropyRef(logits, targets, {}), 1e-14);
  assertClose(F.crossEntropy(x, y, { labelSmoothing: 0.1 }), crossEntropyRef(logits, targets, { smoothing: 0.1 }), 1e-14);
  assertClose(F.crossEntropy(x, y, { reduction: "sum" }), crossEntropyRef(logits, targets, { reduction: "sum" }), 1e-13);
  assertClose(F.crossEntropy(x, y, { reduction: "none", labelSmoothing: 0.2 }), crossEntropyRef(logits, targets, { reduction: "none", smoothing: 0.2 }), 1e-14);
  const targetsWithOwnIgnore = [2, 1, 0, 3, 1];
  assertClose(F.crossEntropy(x, i64(targetsWithOwnIgnore), { ignoreIndex: 1 }), crossEntropyRef(logits, targetsWithOwnIgnore, { ignoreIndex: 1 }), 1e-14);
  const weight = [0.5, 2, 1, 1.5];
  assertClose(F.crossEntropy(x, y, { weight: f64(weight) }), crossEntropyRef(logits, targets, { weight }), 1e-14);
  // [N, C, L] layout: class dim second, as for per-token losses.
  const seq = f64(logits).transpose(0, 1).unsqueeze(0); // [1, 4, 5]
  assertClose(F.crossEntropy(seq, i64([targets]), { labelSmoothing: 0.1 }), crossEntropyRef(logits, targets, { smoothing: 0.1 }), 1e-14);
  assertClose(F.nllLoss(x.logSoftmax(1), y), crossEntropyRef(logits, targets, {}), 1e-14);
});

test("binaryCrossEntropyWithLogits, l1Loss, mseLoss, smoothL1Loss", () => {
  const x = uniformArray(6, 120, -4, 4);
  const t = [1, 0, 0.3, 1, 0, 0.9];
  const w = uniformArray(6, 121, 0.5, 1.5);
  const pos = [2, 2, 2, 0.5, 0.5, 0.5];
  const bce = (i: number, withPos: boolean) =>
    -((withPos ? pos[i] : 1) * t[i] * Math.log(sigmoid(x[i])) + (1 - t[i]) * Math.log(1 - sigmoid(x[i])));
  assertClose(F.binaryCrossEntropyWithLogits(f64(x), f64(t)), [sum(x.map((_, i) => bce(i, false))) / 6], 1e-14);
  assertClose(F.binaryCrossEntropyWithLogits(f64(x), f64(t), { reduction: "none", weight: f64(w) }), x.map((_, i) => w[i] * bce(i, false)), 1e-14);
  assertClose(F.binaryCrossEntropyWithLogits(f64(x).view(2, 3), f64(t).view(2, 3), { posWeight: f64(pos.slice(0, 3)), reduction: "sum" }),
    [sum(x.map((_, i) => { const p = pos[i % 3]; return -(p * t[i] * Math.log(sigmoid(x[i])) + (1 - t[i]) * Math.log(1 - sigmoid(x[i]))); }))], 1e-13);
  const y = uniformArray(6, 122, -4, 4);
  assertClose(F.l1Loss(f64(x), f64(y)), [sum(x.map((v, i) => Math.abs(v - y[i]))) / 6], 1e-14);
  assertClose(F.l1Loss(f64(x), f64(y), "none"), x.map((v, i) => Math.abs(v - y[i])), 1e-14);
  assertClose(F.mseLoss(f64(x), f64(y)), [sum(x.map((v, i) => (v - y[i]) ** 2)) / 6], 1e-13);
  assertClose(F.mseLoss(f64(x), f64(y), "sum"), [sum(x.map((v, i) => (v - y[i]) ** 2))], 1e-13);
  const huber = (d: number) => (Math.abs(d) < 1 ? 0.5 * d * d : Math.abs(d) - 0.5);
  assertClose(F.smoothL1Loss(f64(x), f64(y)), [sum(x.map((v, i) => huber(v - y[i]))) / 6], 1e-14);
});

test("normalize and cosineSimilarity", () => {
  const a = [0, 1, 2].map((r) => uniformArray(4, 130 + r));
  const b = [0, 1, 2].map((r) => uniformArray(4, 140 + r));
  const norm = (v: number[]) => Math.sqrt(sum(v.map((u) => u * u)));
  assertClose(F.normalize(f64(a)), a.flatMap((r) => r.map((u) => u / norm(r))), 1e-15);
  const l1 = (v: number[]) => sum(v.map(Math.abs));
  assertClose(F.normalize(f64(a), 1, 1), a.flatMap((r) => r.map((u) => u / l1(r))), 1e-15);
  const columns = [0, 1, 2, 3].map((c) => a.map((r) => r[c]));
  assertClose(F.normalize(f64(a), 2, 0), a.flatMap((r, i) => r.map((u, c) => u / norm(columns[c]))), 1e-15);
  // A zero vector stays zero (the norm is clamped to eps).
  assertClose(F.normalize(f64([[0, 0, 0]])), [0, 0, 0]);
  const cosine = a.map((r, i) => sum(r.map((u, c) => u * b[i][c])) / (norm(r) * norm(b[i])));
  assertClose(F.cosineSimilarity(f64(a), f64(b)), cosine, 1e-15, { shape: [3] });
  assertClose(F.cosineSimilarity(f64(a).unsqueeze(1), f64(b).unsqueeze(0), -1), a.flatMap((r) => b.map((s) => sum(r.map((u, c) => u * s[c])) / (norm(r) * norm(s)))), 1e-15, { shape: [3, 3] });
});

// ---- attention ----
interface AttentionCase { batch: number; qHeads: number; kvHeads: number; queries: number; keys: number; headDim: number }
/** softmax(q k^T * scale + mask) v per (batch, head), with head h reading kv head floor(h / (qHeads / kvHeads)). */
function attentionRef(q: number[], k: number[], v: number[], c: AttentionCase, opts: { causal?: boolean; allowed?: (b: number, h: number, i: number, j: number) => boolean; additive?: (b: number, h: number, i: number, j: number) => number; scale?: number }): number[] {
  const scale = opts.scale ?? 1 / Math.sqrt(c.headDim);
  const group = c.qHeads / c.kvHeads;
  const out: number[] = [];
  for (let b = 0; b < c.batch; b++) for (let h = 0; h < c.qHeads; h++) {
    const kvh = Math.floor(h / group);
    for (let i = 0; i < c.queries; i++) {
      const qRow = q.slice(((b * c.qHeads + h) * c.queries + i) * c.headDim, ((b * c.qHeads + h) * c.queries + i + 1) * c.headDim);
      const scores: number[] = [];
      for (let j = 0; j < c.keys; j++) {
        const kRow = k.slice(((b * c.kvHeads + kvh) * c.keys + j) * c.headDim, ((b * c.kvHeads + kvh) * c.keys + j + 1) * c.headDim);
        let s = sum(qRow.map((x, d) => x * kRow[d])) * scale;
        if (opts.causal && j > i) s = -Infinity;
        if (opts.allowed && !opts.allowed(b, h, i, j)) s = -Infinity;
        if (opts.additive) s += opts.additive(b, h, i, j);
        scores.push(s);
      }
      const weights = softmaxRow(scores);
      for (let d = 0; d < c.headDim; d++) {
        out.push(sum(weights.map((wt, j) => wt * v[((b * c.kvHeads + kvh) * c.keys + j) * c.headDim + d])));
      }
    }
  }
  return out;
}

function attentionInputs(c: AttentionCase, seed: number): { q: number[]; k: number[]; v: number[]; tq: Tensor; tk: Tensor; tv: Tensor } {
  const q = uniformArray(c.batch * c.qHeads * c.queries * c.headDim, seed);
  const k = uniformArray(c.batch * c.kvHeads * c.keys * c.headDim, seed + 1);
  const v = uniformArray(c.batch * c.kvHeads * c.keys * c.headDim, seed + 2);
  return {
    q, k, v,
    tq: f64Flat(q, [c.batch, c.qHeads, c.queries, c.headDim]),
    tk: f64Flat(k, [c.batch, c.kvHeads, c.keys, c.headDim]),
    tv: f64Flat(v, [c.batch, c.kvHeads, c.keys, c.headDim]),
  };
}

test("scaledDotProductAttention: plain, causal, scale, bool mask, additive mask", () => {
  const c: AttentionCase = { batch: 2, qHeads: 2, kvHeads: 2, queries: 3, keys: 3, headDim: 4 };
  const { q, k, v, tq, tk, tv } = attentionInputs(c, 150);
  const check = (options: F.AttentionOptions, ref: number[], label: string) => {
    assertClose(F.scaledDotProductAttention(tq, tk, tv, options), ref, 1e-13, { shape: [2, 2, 3, 4], message: `fused ${label}` });
    assertClose(F.scaledDotProductAttentionReference(tq, tk, tv, options), ref, 1e-13, { message: `reference ${label}` });
  };
  check({}, attentionRef(q, k, v, c, {}), "plain");
  check({ isCausal: true }, attentionRef(q, k, v, c, { causal: true }), "causal");
  check({ scale: 0.3 }, attentionRef(q, k, v, c, { scale: 0.3 }), "scale");
  // Bool mask [B, 1, L, S] (true = may attend): batch 0 hides key 2, batch 1 hides key 0 from query 1.
  const allowed = (b: number, _h: number, i: number, j: number) => (b === 0 ? j !== 2 : !(i === 1 && j === 0));
  const boolMask = tensor([0, 1].map((b) => [[0, 1, 2].map((i) => [0, 1, 2].map((j) => allowed(b, 0, i, j)))]), on);
  check({ mask: boolMask }, attentionRef(q, k, v, c, { allowed }), "bool mask");
  // Additive float mask broadcast over batch and heads [L, S].
  const bias = uniformArray(9, 160, -2, 2);
  const additive = (_b: number, _h: number, i: number, j: number) => bias[i * 3 + j];
  check({ mask: f64Flat(bias, [3, 3]) }, attentionRef(q, k, v, c, { additive }), "additive mask");
});

test("scaledDotProductAttention: grouped-query heads and more keys than queries", () => {
  const c: AttentionCase = { batch: 1, qHeads: 4, kvHeads: 2, queries: 2, keys: 5, headDim: 3 };
  const { q, k, v, tq, tk, tv } = attentionInputs(c, 170);
  const ref = attentionRef(q, k, v, c, {});
  assertClose(F.scaledDotProductAttention(tq, tk, tv), ref, 1e-13, { shape: [1, 4, 2, 3] });
  assertClose(F.scaledDotProductAttentionReference(tq, tk, tv), ref, 1e-13);
  // Causal with L < S is top-left aligned, as torch's is_causal.
  const causal = attentionRef(q, k, v, c, { causal: true });
  assertClose(F.scaledDotProductAttention(tq, tk, tv, { isCausal: true }), causal, 1e-13);
  assertClose(F.scaledDotProductAttentionReference(tq, tk, tv, { isCausal: true }), causal, 1e-13);
  // One kv head shared by all query heads (multi-query attention).
  const mqa: AttentionCase = { batch: 2, qHeads: 3, kvHeads: 1, queries: 2, keys: 2, headDim: 2 };
  const m = attentionInputs(mqa, 180);
  assertClose(F.scaledDotProductAttention(m.tq, m.tk, m.tv), attentionRef(m.q, m.k, m.v, mqa, {}), 1e-13);
  assertClose(F.scaledDotProductAttention(m.tq, m.tk, m.tv, { mask: ones([2, 2], { ...on, dtype: "bool" }) }), attentionRef(m.q, m.k, m.v, mqa, {}), 1e-13);
});
