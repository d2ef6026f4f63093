// Elementwise math, reductions and matrix products against plain-JS float64 references.
import { test } from "node:test";
import assert from "node:assert/strict";
import { F, tensor } from "../../src/torch/index.js";
import { DEVICE, assertClose, f64, f64Flat, i64, matmulRef, softmaxRow, uniformArray, values } from "../helpers.js";

const on = { device: DEVICE };

test("arithmetic with tensors, broadcasting and scalars", () => {
  const a = [1.5, -2, 3.25, 4, -0.5, 6];
  const b = [2, 0.5, -1, 8, 3, -4];
  const ta = f64Flat(a, [2, 3]);
  const tb = f64Flat(b, [2, 3]);
  assertClose(ta.add(tb), a.map((x, i) => x + b[i]));
  assertClose(ta.sub(tb), a.map((x, i) => x - b[i]));
  assertClose(ta.mul(tb), a.map((x, i) => x * b[i]));
  assertClose(ta.div(tb), a.map((x, i) => x / b[i]), 1e-15);
  assertClose(ta.add(tb, 2.5), a.map((x, i) => x + 2.5 * b[i]));
  assertClose(ta.sub(tb, 3), a.map((x, i) => x - 3 * b[i]));
  assertClose(ta.add(1), a.map((x) => x + 1));
  assertClose(ta.mul(0.5), a.map((x) => x * 0.5));
  assertClose(ta.div(4), a.map((x) => x / 4));
  assertClose(ta.rsub(10), a.map((x) => 10 - x));
  assertClose(ta.neg(), a.map((x) => -x));
  assertClose(ta.remainder(2), a.map((x) => x - 2 * Math.floor(x / 2)), 1e-15);
  // Broadcasting: [2, 3] with [3] (rows) and [2, 1] (columns).
  const row = [10, 20, 30];
  const col = [100, 200];
  assertClose(ta.add(f64(row)), a.map((x, i) => x + row[i % 3]));
  assertClose(ta.mul(f64([[100], [200]])), a.map((x, i) => x * col[Math.floor(i / 3)]));
  assertClose(f64([[1], [2]]).add(f64([10, 20, 30])), [[11, 21, 31], [12, 22, 32]]);
  // Integer tensors keep their dtype with integer scalars; true division gives floats, as in torch.
  const ints = i64([7, -7, 4]);
  assert.equal(ints.add(1).dtype, "int64");
  assert.deepEqual(ints.mul(3).toArray(), [21, -21, 12]);
  assert.equal(ints.div(2).dtype, "float32");
  assertClose(ints.div(2), [3.5, -3.5, 2]);
  assert.deepEqual(ints.floorDivide(2).toArray(), [3, -4, 2]);
  assert.equal(f64([1]).add(i64([2])).dtype, "float64");
  assert.deepEqual(ta.gt(1).toArray(), [[true, false, true], [true, false, true]]);
  assert.deepEqual(ta.eq(f64(row).div(5)).toArray(), [[false, false, false], [false, false, true]]);
  assertClose(ta.minimum(tb), a.map((x, i) => Math.min(x, b[i])));
  assertClose(ta.maximum(tb), a.map((x, i) => Math.max(x, b[i])));
});

test("pow, exp, log, sqrt, rsqrt, abs, clamp and friends", () => {
  const x = [0.25, 0.5, 1, 2.5, 7, 12.75];
  const t = f64(x);
  const close = (got: typeof t, ref: (v: number) => number) => assertClose(got, x.map(ref), 0, { rtol: 1e-14 });
  close(t.pow(2), (v) => v * v);
  close(t.pow(0.5), Math.sqrt);
  close(t.pow(-1.5), (v) => v ** -1.5);
  close(t.pow(f64([1, 2, 3, 0.5, -1, 0])), (v) => v ** [1, 2, 3, 0.5, -1, 0][x.indexOf(v)]);
  close(t.exp(), Math.exp);
  close(t.log(), Math.log);
  close(t.log1p(), Math.log1p);
  close(t.expm1(), Math.expm1);
  close(t.log2(), Math.log2);
  close(t.sqrt(), Math.sqrt);
  close(t.rsqrt(), (v) => 1 / Math.sqrt(v));
  close(t.reciprocal(), (v) => 1 / v);
  close(t.square(), (v) => v * v);
  close(t.sin(), Math.sin);
  close(t.cos(), Math.cos);
  close(t.tanh(), Math.tanh);
  const signed = [-3.5, -1, -0.25, 0, 0.75, 2, 9];
  const s = f64(signed);
  assertClose(s.abs(), signed.map(Math.abs));
  assertClose(s.sign(), signed.map(Math.sign));
  assertClose(s.clamp(-1, 1), signed.map((v) => Math.min(Math.max(v, -1), 1)));
  assertClose(s.clampMin(0), signed.map((v) => Math.max(v, 0)));
  assertClose(s.clampMax(0.5), signed.map((v) => Math.min(v, 0.5)));
  assertClose(s.floor(), signed.map(Math.floor));
  assertClose(s.ceil(), signed.map(Math.ceil));
  assertClose(s.trunc(), signed.map(Math.trunc));
  // round() rounds halves to even, like torch.round.
  assertClose(f64([0.5, 1.5, 2.5, -0.5, -1.5, 1.4]).round(), [0, 2, 2, -0, -2, 1]);
  assert.deepEqual(f64([1, 0]).log().isinf().toArray(), [false, true]);
  assert.deepEqual(f64([-1]).sqrt().isnan().toArray(), [true]);
  assertClose(f64([NaN, Infinity, -Infinity, 1]).nanToNum(0, 5, -5), [0, 5, -5, 1]);
});

// ---- reductions ----
const shape = [3, 4];
const data = uniformArray(12, 5, -2, 2);
const rows = [0, 1, 2].map((r) => data.slice(r * 4, r * 4 + 4));
const cols = [0, 1, 2, 3].map((c) => rows.map((r) => r[c]));
const sumOf = (v: number[]) => v.reduce((a, b) => a + b, 0);
const meanOf = (v: number[]) => sumOf(v) / v.length;
const unbiasedVar = (v: number[]) => sumOf(v.map((x) => (x - meanOf(v)) ** 2)) / (v.length - 1);

test("sum, mean, var, std, prod over all elements and along dims", () => {
  const t = f64Flat(data, shape);
  assertClose(t.sum(), [sumOf(data)], 1e-13);
  assert.deepEqual(t.sum().shape, []);
  assertClose(t.sum(1), rows.map(sumOf), 1e-14, { shape: [3] });
  assertClose(t.sum(0, true), cols.map(sumOf), 1e-14, { shape: [1, 4] });
  assertClose(t.sum([0, 1]), [sumOf(data)], 1e-13);
  assertClose(t.mean(), [meanOf(data)], 1e-14);
  assertClose(t.mean(0), cols.map(meanOf), 1e-14);
  assertClose(t.mean(-1, true), rows.map(meanOf), 1e-14, { shape: [3, 1] });
  assertClose(t.var(), [unbiasedVar(data)], 1e-13);
  assertClose(t.var(1), rows.map(unbiasedVar), 1e-13);
  assertClose(t.var(1, false), rows.map((r) => (unbiasedVar(r) * 3) / 4), 1e-13);
  assertClose(t.std(0), cols.map((c) => Math.sqrt(unbiasedVar(c))), 1e-13);
  assertClose(t.prod(1), rows.map((r) => r.reduce((a, b) => a * b, 1)), 1e-13);
  assertClose(t.norm(), [Math.sqrt(sumOf(data.map((x) => x * x)))], 1e-13);
  assertClose(t.logsumexp(1), rows.map((r) => Math.log(sumOf(r.map(Math.exp)))), 1e-13);
  assertClose(t.amax(0), cols.map((c) => Math.max(...c)));
  assertClose(t.amin(1), rows.map((r) => Math.min(...r)));
  // Integer sums accumulate in int64.
  assert.equal(i64([1, 2, 3]).sum().dtype, "int64");
  assert.equal(tensor([1, 2, 3], { ...on, dtype: "int32" }).sum().dtype, "int64");
  assert.equal(f64([1, 2]).sum(null, false, "float32").dtype, "float32");
});

test("max/min with indices, argmax, argmin", () => {
  const t = f64Flat(data, shape);
  assertClose(t.max(), [Math.max(...data)]);
  assertClose(t.min(), [Math.min(...data)]);
  const byRow = t.max(1);
  assertClose(byRow.values, rows.map((r) => Math.max(...r)));
  assert.deepEqual(byRow.indices.toArray(), rows.map((r) => r.indexOf(Math.max(...r))));
  assert.equal(byRow.indices.dtype, "int64");
  const byCol = t.min(0, true);
  assert.deepEqual(byCol.values.shape, [1, 4]);
  assertClose(byCol.values, cols.map((c) => Math.min(...c)));
  assert.deepEqual(values(byCol.indices), cols.map((c) => c.indexOf(Math.min(...c))));
  assert.equal(t.argmax().item(), data.indexOf(Math.max(...data)));
  assert.deepEqual(t.argmax(0).toArray(), cols.map((c) => c.indexOf(Math.max(...c))));
  assert.deepEqual(t.argmin(1).toArray(), rows.map((r) => r.indexOf(Math.min(...r))));
});

test("topk, sort, argsort, cumsum, cumprod", () => {
  const v = [3, -1, 4, 1.5, -9, 2.6, 5];
  const t = f64(v);
  const order = v.map((x, i) => [x, i]).sort((p, q) => q[0] - p[0]);
  const top = t.topk(3);
  assertClose(top.values, order.slice(0, 3).map((p) => p[0]));
  assert.deepEqual(top.indices.toArray(), order.slice(0, 3).map((p) => p[1]));
  const bottom = t.topk(2, -1, false);
  assertClose(bottom.values, [-9, -1]);
  assert.deepEqual(bottom.indices.toArray(), [4, 1]);
  const sorted = t.sort();
  assertClose(sorted.values, [...v].sort((p, q) => p - q));
  assert.deepEqual(sorted.indices.toArray(), [...order].reverse().map((p) => p[1]));
  const descending = t.sort(0, true);
  assertClose(descending.values, order.map((p) => p[0]));
  // Stable sort keeps equal keys in their original order.
  assert.deepEqual(f64([2, 1, 2, 1, 2]).argsort().toArray(), [1, 3, 0, 2, 4]);
  const m = f64Flat(data, shape);
  const rowTop = m.topk(2, 1);
  assert.deepEqual(rowTop.values.shape, [3, 2]);
  assertClose(rowTop.values, rows.flatMap((r) => [...r].sort((p, q) => q - p).slice(0, 2)));
  let running = 0;
  assertClose(t.cumsum(0), v.map((x) => (running += x)), 1e-14);
  assertClose(m.cumsum(1), rows.flatMap((r) => { let s = 0; return r.map((x) => (s += x)); }), 1e-14);
  let product = 1;
  assertClose(t.cumprod(0), v.map((x) => (product *= x)), 1e-10);
});

test("softmax and logSoftmax along each dim", () => {
  const t = f64Flat(data, shape);
  assertClose(t.softmax(1), rows.flatMap(softmaxRow), 1e-15);
  assertClose(F.logSoftmax(t, -1), rows.flatMap((r) => softmaxRow(r).map(Math.log)), 1e-14);
  const byColumn = cols.map(softmaxRow);
  assertClose(t.softmax(0), rows.flatMap((_, r) => byColumn.map((c) => c[r])), 1e-15);
  // Large logits do not overflow.
  assertClose(f64([1000, 1000, 999]).softmax(0), softmaxRow([1, 1, 0]), 1e-15);
  assertClose(f64([1, 2]).softmax(0, "float32"), softmaxRow([1, 2]), 1e-7);
});

test("matmul, mm, bmm, addmm, outer, einsum", () => {
  const a = uniformArray(2 * 3, 1);
  const b = uniformArray(3 * 4, 2);
  const ta = f64Flat(a, [2, 3]);
  const tb = f64Flat(b, [3, 4]);
  const ab = matmulRef(a, b, 2, 3, 4);
  assertClose(ta.matmul(tb), ab, 1e-15, { shape: [2, 4] });
  assertClose(ta.mm(tb), ab, 1e-15);
  // Vector cases: [3] @ [3, 4] and [2, 3] @ [3].
  assertClose(f64(a.slice(0, 3)).matmul(tb), matmulRef(a.slice(0, 3), b, 1, 3, 4), 1e-15, { shape: [4] });
  assertClose(ta.matmul(f64(b.slice(0, 3))), matmulRef(a, b.slice(0, 3), 2, 3, 1), 1e-15, { shape: [2] });
  // Batched: [2, 2, 3] @ [2, 3, 4], and broadcasting a plain matrix over the batch.
  const batchA = uniformArray(2 * 2 * 3, 3);
  const batchB = uniformArray(2 * 3 * 4, 4);
  const expected = [0, 1].flatMap((n) => matmulRef(batchA.slice(n * 6, n * 6 + 6), batchB.slice(n * 12, n * 12 + 12), 2, 3, 4));
  const tA = f64Flat(batchA, [2, 2, 3]);
  assertClose(tA.bmm(f64Flat(batchB, [2, 3, 4])), expected, 1e-15, { shape: [2, 2, 4] });
  assertClose(tA.matmul(tb), [0, 1].flatMap((n) => matmulRef(batchA.slice(n * 6, n * 6 + 6), b, 2, 3, 4)), 1e-15);
  const bias = uniformArray(2 * 4, 5);
  assertClose(F.addmm(f64Flat(bias, [2, 4]), ta, tb, 0.5, 2), ab.map((x, i) => 0.5 * bias[i] + 2 * x), 1e-15);
  assertClose(F.addmm(f64(bias.slice(0, 4)), ta, tb), ab.map((x, i) => bias[i % 4] + x), 1e-15);
  assertClose(F.outer(f64([1, 2]), f64([3, 4, 5])), [[3, 4, 5], [6, 8, 10]]);
  assertClose(F.einsum("ij,jk->ik", ta, tb), ab, 1e-15);
  assertClose(F.einsum("ij->j", ta), [0, 1, 2].map((j) => a[j] + a[3 + j]), 1e-15);
});

test("logical ops and all/any", () => {
  const p = tensor([true, true, false, false], on);
  const q = tensor([true, false, true, false], on);
  assert.deepEqual(p.logicalAnd(q).toArray(), [true, false, false, false]);
  assert.deepEqual(p.logicalOr(q).toArray(), [true, true, true, false]);
  assert.deepEqual(p.logicalXor(q).toArray(), [false, true, true, false]);
  assert.deepEqual(p.logicalNot().toArray(), [false, false, true, true]);
  assert.equal(p.all().item() as unknown, false);
  assert.equal(p.any().item() as unknown, true);
  assert.equal(p.countNonzero().item(), 2);
  assert.ok(f64([1, 2]).allclose(f64([1, 2 + 1e-9])));
  assert.ok(!f64([1, 2]).equal(f64([1, 2 + 1e-9])));
});
