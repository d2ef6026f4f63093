// Shared by the Llama / Qwen2 / generation tests: fixture folders and goldens, tolerance checks, tiny
// random models, and a float64 reference decoder written out in plain JS loops.
import assert from "node:assert/strict";
import { Tensor, tidy, dispose, noGrad, manualSeed, randnLike, loadPretrained, type CausalLM } from "../../src/index.js";
import type { Module } from "../../src/torch/nn/index.js";
import { assertClose, assertRelativeClose, fixturePath, missingFixture as missingFixtureFile, readGoldens } from "./fixture_helpers.js";

export { FIXTURES, fixturePath, readGoldens, maxAbsDiff, maxAbs, assertClose, type Goldens } from "./fixture_helpers.js";

/** A skip reason when the fixture (config.json and goldens) is absent, else false. */
export function missingFixture(name: string): string | false {
  return missingFixtureFile(name, "config.json");
}

/** Asserts max |actual - expected| / max |expected| <= tolerance (gradients). */
export function assertRelClose(actual: Tensor, expected: Tensor, tolerance: number, what: string): void {
  assertRelativeClose(actual, expected, tolerance, what, 1e-12);
}

/** Forward, loss and gradient parity of one fixture against its goldens (used by the Qwen2 tests too). */
export async function checkForwardParity(name: string): Promise<void> {
  const goldens = readGoldens(name);
  const model = (await loadPretrained(fixturePath(name))) as unknown as CausalLM;
  try {
    const out = model.forward({
      input_ids: goldens.get("forward.input_ids"),
      attention_mask: goldens.get("forward.attention_mask"),
      labels: goldens.get("forward.labels"),
      output_hidden_states: true,
    });
    const states = out.hidden_states!;
    assert.equal(states.length, goldens.meta.num_hidden_states, "number of hidden states");
    states.forEach((h, i) => assertClose(h, goldens.get(`forward.hidden_states.${i}`), 1e-4, `${name} hidden_states[${i}]`));
    assertClose(out.logits, goldens.get("forward.logits"), 1e-4, `${name} logits`);
    const loss = out.loss!.item();
    assert.ok(Math.abs(loss - (goldens.meta.loss as number)) <= 1e-5, `${name} loss ${loss} vs ${goldens.meta.loss}`);
    out.loss!.backward();
    const names = model.namedParameters().map(([n]) => n);
    assert.deepEqual(names, goldens.meta.parameter_names, `${name}: parameter names and order`);
    for (const [paramName, p] of model.namedParameters()) {
      tidy(() => {
        const grad = p.grad;
        assert.ok(grad, `${name}: ${paramName} got no gradient`);
        assertRelClose(grad, goldens.get(`grad.${paramName}`), 1e-4, `${name} grad.${paramName}`);
      });
    }
    dispose(out);
  } finally {
    model.dispose();
    goldens.dispose();
  }
}

/** Gives every parameter of a fresh model seeded random values, norms around 1 and biases around 0. */
export function randomizeParameters(model: Module, seed: number, scale = 0.2): void {
  manualSeed(seed);
  noGrad(() => {
    for (const [name, p] of model.namedParameters()) {
      tidy(() => {
        if (name.endsWith("norm.weight")) p.copy_(randnLike(p).mul(0.2).add(1));
        else if (name.endsWith(".bias")) p.copy_(randnLike(p).mul(0.1));
        else p.copy_(randnLike(p).mul(scale));
      });
    }
  });
}

// ---- a float64 decoder written out in loops (independent of the model code) ----

export interface ReferenceSpec {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  eps: number;
  /** Inverse frequencies of the rope, one per pair. */
  invFreq: number[];
  /** Per layer: null (full attention) or the sliding window. */
  windows: (number | null)[];
  tied: boolean;
}

type Matrix = { rows: number; cols: number; data: Float64Array };

function toMatrix(t: Tensor): Matrix {
  const data = Float64Array.from(t.double().dataAsNumbers());
  return t.ndim === 1 ? { rows: 1, cols: t.shape[0], data } : { rows: t.shape[0], cols: t.shape[1], data };
}

/** y = x W^T + b for one vector x. */
function linearRow(x: Float64Array, w: Matrix, b: Matrix | null): Float64Array {
  const y = new Float64Array(w.rows);
  for (let o = 0; o < w.rows; o++) {
    let sum = b ? b.data[o] : 0;
    for (let i = 0; i < w.cols; i++) sum += x[i] * w.data[o * w.cols + i];
    y[o] = sum;
  }
  return y;
}

function rmsNormRow(x: Float64Array, w: Matrix, eps: number): Float64Array {
  let sq = 0;
  for (const v of x) sq += v * v;
  const inv = 1 / Math.sqrt(sq / x.length + eps);
  return x.map((v, i) => v * inv * w.data[i]);
}

/** Rotates one head vector by position p: pairs (i, i + D/2) turn by p * invFreq[i]. */
function ropeRow(x: Float64Array, position: number, invFreq: number[]): Float64Array {
  const half = x.length / 2;
  const out = new Float64Array(x.length);
  for (let i = 0; i < half; i++) {
    const angle = position * invFreq[i];
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    out[i] = x[i] * c - x[i + half] * s;
    out[i + half] = x[i + half] * c + x[i] * s;
  }
  return out;
}

/**
 * Logits [batch][seq][vocab] and hidden states ([state][batch][seq][hidden]; embeddings, layer outputs,
 * final norm) of a Llama / Qwen2 decoder for the given ids, 0/1 mask and position ids. Fully masked query
 * rows get a zero attention output, as PyTorch's SDPA gives them.
 */
export function referenceDecoder(model: Module, spec: ReferenceSpec, ids: number[][], mask: number[][], positions: number[][]): { logits: number[][][]; hidden: number[][][][] } {
  const param = (name: string) => toMatrix(model.getParameter(name));
  const maybe = (name: string) => (model.namedParameters().some(([n]) => n === name) ? param(name) : null);
  const embed = param("model.embed_tokens.weight");
  const hiddenSize = embed.cols;
  const layers = spec.windows.length;
  const hidden: number[][][][] = [];
  const states: Float64Array[][] = ids.map((row) => row.map((id) => embed.data.slice(id * hiddenSize, (id + 1) * hiddenSize)));
  const record = (rows: Float64Array[][]) => hidden.push(rows.map((row) => row.map((v) => Array.from(v))));
  const groups = spec.numHeads / spec.numKvHeads;
  for (let layer = 0; layer < layers; layer++) {
    record(states);
    const p = `model.layers.${layer}.`;
    const [wq, wk, wv, wo] = ["q", "k", "v", "o"].map((n) => param(`${p}self_attn.${n}_proj.weight`));
    const [bq, bk, bv, bo] = ["q", "k", "v", "o"].map((n) => maybe(`${p}self_attn.${n}_proj.bias`));
    const [wg, wu, wd] = ["gate", "up", "down"].map((n) => param(`${p}mlp.${n}_proj.weight`));
    const [bg, bu, bd] = ["gate", "up", "down"].map((n) => maybe(`${p}mlp.${n}_proj.bias`));
    const n1 = param(`${p}input_layernorm.weight`);
    const n2 = param(`${p}post_attention_layernorm.weight`);
    const window = spec.windows[layer];
    for (let b = 0; b < ids.length; b++) {
      const length = ids[b].length;
      const normed = states[b].map((h) => rmsNormRow(h, n1, spec.eps));
      const head = (v: Float64Array, h: number) => v.slice(h * spec.headDim, (h + 1) * spec.headDim);
      const q = normed.map((x, t) => Array.from({ length: spec.numHeads }, (_, h) => ropeRow(head(linearRow(x, wq, bq), h), positions[b][t], spec.invFreq)));
      const k = normed.map((x, t) => Array.from({ length: spec.numKvHeads }, (_, h) => ropeRow(head(linearRow(x, wk, bk), h), positions[b][t], spec.invFreq)));
      const v = normed.map((x) => Array.from({ length: spec.numKvHeads }, (_, h) => head(linearRow(x, wv, bv), h)));
      const next: Float64Array[] = [];
      for (let i = 0; i < length; i++) {
        const attended = new Float64Array(spec.numHeads * spec.headDim);
        for (let h = 0; h < spec.numHeads; h++) {
          const kvHead = Math.floor(h / groups);
          const allowed: number[] = [];
          for (let j = 0; j <= i; j++) if (mask[b][j] !== 0 && (window === null || j > i - window)) allowed.push(j);
          if (allowed.length === 0) continue;
          const scores = allowed.map((j) => {
            let dot = 0;
            for (let d = 0; d < spec.headDim; d++) dot += q[i][h][d] * k[j][kvHead][d];
            return dot / Math.sqrt(spec.headDim);
          });
          const top = Math.max(...scores);
          const weights = scores.map((s) => Math.exp(s - top));
          const total = weights.reduce((a, c) => a + c, 0);
          allowed.forEach((j, n) => {
            for (let d = 0; d < spec.headDim; d++) attended[h * spec.headDim + d] += (weights[n] / total) * v[j][kvHead][d];
          });
        }
        const projected = linearRow(attended, wo, bo);
        const afterAttention = states[b][i].map((x, c) => x + projected[c]);
        const x2 = rmsNormRow(afterAttention, n2, spec.eps);
        const gate = linearRow(x2, wg, bg);
        const up = linearRow(x2, wu, bu);
        const act = gate.map((g, c) => (g / (1 + Math.exp(-g))) * up[c]);
        const down = linearRow(act, wd, bd);
        next.push(afterAttention.map((x, c) => x + down[c]));
      }
      states[b] = next;
    }
  }
  const finalNorm = param("model.norm.weight");
  const head = spec.tied ? embed : param("lm_head.weight");
  const normedFinal = states.map((row) => row.map((h) => rmsNormRow(h, finalNorm, spec.eps)));
  record(normedFinal);
  const logits = normedFinal.map((row) => row.map((h) => Array.from(linearRow(h, head, null))));
  return { logits, hidden };
}

/** max |tensor - nested array| */
export function maxDiffToArray(t: Tensor, expected: number[][][]): number {
  const actual = t.double().toArray() as number[][][];
  let worst = 0;
  expected.forEach((rows, b) => rows.forEach((row, i) => row.forEach((v, c) => (worst = Math.max(worst, Math.abs(actual[b][i][c] - v))))));
  return worst;
}

/** Position ids as transformers' generate() makes them from a 0/1 mask: cumsum - 1, 1 on padding. */
export function positionsFromMask(mask: number[][]): number[][] {
  return mask.map((row) => {
    let count = 0;
    return row.map((m) => (m !== 0 ? count++ : 1));
  });
}
