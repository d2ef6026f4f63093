// Shape, indexing, padding and resizing ops against plain-JS references.
import { test } from "node:test";
import assert from "node:assert/strict";
import { F, arange, cat, stack, tensor, where, type Tensor } from "../../src/torch/index.js";
import { DEVICE, assertClose, assertThrowsWith, at, f64, f64Flat, i64, stridesOf, uniformArray, values } from "../helpers.js";

const on = { device: DEVICE };
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** arange(n) as float64 of a given shape. */
const seq = (shape: number[]) => f64Flat(range(shape.reduce((a, b) => a * b, 1)), shape);

/** Plain-JS permute of a row-major array. */
function permuteRef(data: number[], shape: number[], dims: number[]): number[] {
  const outShape = dims.map((d) => shape[d]);
  const n = data.length;
  const out = new Array<number>(n);
  const outStrides = stridesOf(outShape);
  for (let flatOut = 0; flatOut < n; flatOut++) {
    const sourceIndex = new Array<number>(shape.length);
    let rest = flatOut;
    for (let d = 0; d < outShape.length; d++) {
      const i = Math.floor(rest / outStrides[d]);
      rest -= i * outStrides[d];
      sourceIndex[dims[d]] = i;
    }
    out[flatOut] = at(data, shape, sourceIndex);
  }
  return out;
}

test("view, reshape, flatten, squeeze and unsqueeze keep row-major order", () => {
  const t = seq([2, 3, 4]);
  assertClose(t.view(6, 4), range(24), 0, { shape: [6, 4] });
  assertClose(t.view([4, -1]), range(24), 0, { shape: [4, 6] });
  assertClose(t.reshape(24), range(24), 0, { shape: [24] });
  assertClose(t.flatten(1), range(24), 0, { shape: [2, 12] });
  assertClose(t.flatten(0, 1), range(24), 0, { shape: [6, 4] });
  const u = t.unsqueeze(1);
  assert.deepEqual(u.shape, [2, 1, 3, 4]);
  assert.deepEqual(u.unsqueeze(-1).shape, [2, 1, 3, 4, 1]);
  assert.deepEqual(u.squeeze(1).shape, [2, 3, 4]);
  assert.deepEqual(seq([1, 3, 1]).squeeze().shape, [3]);
  assert.deepEqual(seq([2, 3]).squeeze(0).shape, [2, 3]);
});

test("permute, transpose and contiguous", () => {
  const shape = [2, 3, 4];
  const t = seq(shape);
  const p = t.permute(2, 0, 1);
  assert.deepEqual(p.shape, [4, 2, 3]);
  assert.equal(p.isContiguous(), false);
  assertClose(p, permuteRef(range(24), shape, [2, 0, 1]), 0);
  const c = p.contiguous();
  assert.equal(c.isContiguous(), true);
  assertClose(c.view(-1), permuteRef(range(24), shape, [2, 0, 1]), 0);
  assertClose(t.transpose(0, 2), permuteRef(range(24), shape, [2, 1, 0]), 0, { shape: [4, 3, 2] });
  assertClose(seq([2, 3]).T, [[0, 3], [1, 4], [2, 5]], 0);
  // A view of a non-contiguous tensor is refused; reshape copies instead.
  assertThrowsWith(() => p.view(-1), "view");
  assertClose(p.reshape(-1), permuteRef(range(24), shape, [2, 0, 1]), 0);
});

test("cat, stack, split, chunk, unbind", () => {
  const a = f64([[1, 2], [3, 4]]);
  const b = f64([[5, 6]]);
  assertClose(cat([a, b]), [[1, 2], [3, 4], [5, 6]], 0);
  assertClose(cat([a, f64([[7], [8]])], 1), [[1, 2, 7], [3, 4, 8]], 0);
  assertClose(stack([a, a.mul(10)]), [[[1, 2], [3, 4]], [[10, 20], [30, 40]]], 0);
  assertClose(stack([a, a.mul(10)], 2), [[[1, 10], [2, 20]], [[3, 30], [4, 40]]], 0);
  const t = seq([7]);
  assert.deepEqual(t.split(3).map(values), [[0, 1, 2], [3, 4, 5], [6]]);
  assert.deepEqual(t.split([2, 5]).map(values), [[0, 1], [2, 3, 4, 5, 6]]);
  assert.deepEqual(t.chunk(3).map(values), [[0, 1, 2], [3, 4, 5], [6]]);
  const m = seq([2, 4]);
  assert.deepEqual(m.chunk(2, 1).map(values), [[0, 1, 4, 5], [2, 3, 6, 7]]);
  assert.deepEqual(m.unbind(1).map(values), [[0, 4], [1, 5], [2, 6], [3, 7]]);
});

test("narrow, slice and select", () => {
  const m = seq([3, 5]);
  assertClose(m.narrow(1, 1, 3), [[1, 2, 3], [6, 7, 8], [11, 12, 13]], 0);
  assertClose(m.narrow(0, 2, 1), [[10, 11, 12, 13, 14]], 0);
  assertClose(m.slice(1, 0, null, 2), [[0, 2, 4], [5, 7, 9], [10, 12, 14]], 0);
  assertClose(m.slice(1, -2), [[3, 4], [8, 9], [13, 14]], 0);
  assertClose(m.slice(0, 1, 2), [[5, 6, 7, 8, 9]], 0);
  assertClose(m.select(1, 2), [2, 7, 12], 0, { shape: [3] });
  assertClose(m.select(0, -1), [10, 11, 12, 13, 14], 0, { shape: [5] });
});

test("indexSelect, gather, scatter, scatterAdd", () => {
  const m = seq([3, 4]);
  assertClose(m.indexSelect(0, i64([2, 0, 2])), [[8, 9, 10, 11], [0, 1, 2, 3], [8, 9, 10, 11]], 0);
  assertClose(m.indexSelect(1, i64([3, 1])), [[3, 1], [7, 5], [11, 9]], 0);
  // gather: out[i][j] = m[i][index[i][j]] along dim 1; m[index[i][j]][j] along dim 0.
  const idx = [[3, 0], [1, 1], [2, 3]];
  assertClose(m.gather(1, i64(idx)), idx.map((row, i) => row.map((j) => i * 4 + j)), 0);
  const idx0 = [[2, 0, 1, 2]];
  assertClose(m.gather(0, i64(idx0)), [idx0[0].map((i, j) => i * 4 + j)], 0);
  const zeros = f64([[0, 0, 0, 0], [0, 0, 0, 0]]);
  const src = f64([[1, 2, 3, 4], [5, 6, 7, 8]]);
  // scatter along dim 1: out[i][index[i][j]] = src[i][j]
  assertClose(zeros.scatter(1, i64([[3, 1], [0, 2]]), src.narrow(1, 0, 2)), [[0, 2, 0, 1], [5, 0, 6, 0]], 0);
  assertClose(zeros.scatter(1, i64([[2], [1]]), 9), [[0, 0, 9, 0], [0, 9, 0, 0]], 0);
  assertClose(zeros.scatterAdd(1, i64([[1, 1, 1, 0], [3, 3, 0, 0]]), src), [[4, 6, 0, 0], [15, 0, 0, 11]], 0);
});

test("maskedFill, where, expand, repeat, repeatInterleave", () => {
  const m = f64([[1, -2], [-3, 4]]);
  const negative = m.lt(0);
  assert.deepEqual(negative.toArray(), [[false, true], [true, false]]);
  assertClose(m.maskedFill(negative, 0), [[1, 0], [0, 4]], 0);
  assertClose(m.maskedFill(tensor([true, false], on), -1), [[-1, -2], [-1, 4]], 0);
  assertClose(where(negative, m.neg(), m), [[1, 2], [3, 4]], 0);
  assertClose(where(negative, 0, m), [[1, 0], [0, 4]], 0);
  assertClose(where(negative, m, 7), [[7, -2], [-3, 7]], 0);
  const column = f64([[1], [2]]);
  assertClose(column.expand(2, 3), [[1, 1, 1], [2, 2, 2]], 0);
  assertClose(column.expand(-1, 2), [[1, 1], [2, 2]], 0);
  assertClose(f64([1, 2]).expand(2, 2), [[1, 2], [1, 2]], 0);
  assertClose(f64([[1, 2]]).repeat(2, 2), [[1, 2, 1, 2], [1, 2, 1, 2]], 0);
  assertClose(f64([1, 2]).repeatInterleave(2, 0), [1, 1, 2, 2], 0);
  assertClose(seq([2, 3]).flip(1), [[2, 1, 0], [5, 4, 3]], 0);
  assertClose(seq([3, 3]).tril(), [[0, 0, 0], [3, 4, 0], [6, 7, 8]], 0);
});

test("advanced index and indexPut", () => {
  const m = seq([3, 3]);
  assertClose(m.index([i64([0, 2]), i64([1, 0])]), [1, 6], 0);
  assertClose(m.index([i64([2, 0])]), [[6, 7, 8], [0, 1, 2]], 0);
  assertClose(m.indexPut([i64([0, 1]), i64([0, 1])], f64([-1, -2])), [[-1, 1, 2], [3, -2, 5], [6, 7, 8]], 0);
  assertClose(m.indexPut([i64([0, 0])], f64([[1, 1, 1], [2, 2, 2]]), true), [[3, 4, 5], [3, 4, 5], [6, 7, 8]], 0);
});

// ---- padding ----
/** Plain-JS 2-d pad of an [h, w] plane: pads = [left, right, top, bottom]. */
function pad2dRef(plane: number[], h: number, w: number, pads: number[], mode: "constant" | "reflect" | "replicate", value = 0): number[] {
  const [left, right, top, bottom] = pads;
  const source = (i: number, n: number): number => {
    if (mode === "replicate") return Math.min(Math.max(i, 0), n - 1);
    if (mode === "reflect") {
      let k = i;
      while (k < 0 || k >= n) k = k < 0 ? -k : 2 * (n - 1) - k;
      return k;
    }
    return i >= 0 && i < n ? i : -1;
  };
  const out: number[] = [];
  for (let y = -top; y < h + bottom; y++) for (let x = -left; x < w + right; x++) {
    const sy = source(y, h);
    const sx = source(x, w);
    out.push(sy < 0 || sx < 0 ? value : plane[sy * w + sx]);
  }
  return out;
}

test("pad: constant, reflect, replicate (last dim first)", () => {
  const h = 3;
  const w = 4;
  const plane = uniformArray(h * w, 11);
  const x = f64Flat(plane, [1, 1, h, w]);
  for (const [mode, pads] of [
    ["constant", [1, 2, 0, 1]],
    ["reflect", [2, 1, 1, 2]],
    ["replicate", [3, 0, 2, 1]],
  ] as const) {
    const out = F.pad(x, [...pads], mode, mode === "constant" ? 2.5 : 0);
    assert.deepEqual(out.shape, [1, 1, h + pads[2] + pads[3], w + pads[0] + pads[1]], mode);
    assertClose(out, pad2dRef(plane, h, w, [...pads], mode, 2.5), 1e-15, { message: mode });
  }
  // One padded dim on a 3-d input; constant pad works on any rank.
  const row = f64Flat([1, 2, 3], [1, 1, 3]);
  assertClose(F.pad(row, [2, 1], "reflect"), [3, 2, 1, 2, 3, 2], 0);
  assertClose(F.pad(row, [1, 2], "replicate"), [1, 1, 2, 3, 3, 3], 0);
  assertClose(F.pad(f64([1, 2]), [1, 1]), [0, 1, 2, 0], 0);
});

// ---- interpolation ----
/** Separable resize of an [h, w] plane: weightsFor(outSize, inSize) gives, per output index, [sourceIndex, weight] pairs. */
type Taps = [number, number][][];
function resizeSeparable(plane: number[], h: number, w: number, rows: Taps, cols: Taps): number[] {
  const out: number[] = [];
  for (const rowTaps of rows) for (const colTaps of cols) {
    let s = 0;
    for (const [y, wy] of rowTaps) for (const [x, wx] of colTaps) s += wy * wx * plane[y * w + x];
    out.push(s);
  }
  return out;
}
const clampIndex = (i: number, n: number) => Math.min(Math.max(i, 0), n - 1);

function nearestTaps(outSize: number, inSize: number): Taps {
  const scale = inSize / outSize;
  return range(outSize).map((i) => [[Math.min(Math.floor(i * scale), inSize - 1), 1]]);
}
function bilinearTaps(outSize: number, inSize: number, alignCorners: boolean): Taps {
  return range(outSize).map((i) => {
    const source = alignCorners
      ? outSize > 1 ? (i * (inSize - 1)) / (outSize - 1) : 0
      : Math.max(((i + 0.5) * inSize) / outSize - 0.5, 0);
    const i0 = Math.floor(source);
    const frac = source - i0;
    return [[clampIndex(i0, inSize), 1 - frac], [clampIndex(i0 + 1, inSize), frac]];
  });
}
// Keys' cubic convolution kernel with parameter a (a = -0.75 in upsample_bicubic2d, -0.5 in PIL / antialias).
function keysCubic(x: number, a: number): number {
  const t = Math.abs(x);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}
function bicubicTaps(outSize: number, inSize: number): Taps {
  return range(outSize).map((i) => {
    const source = ((i + 0.5) * inSize) / outSize - 0.5; // not clamped for cubic
    const i0 = Math.floor(source);
    const frac = source - i0;
    return [-1, 0, 1, 2].map((k) => [clampIndex(i0 + k, inSize), keysCubic(frac - k, -0.75)] as [number, number]);
  });
}
/** Antialiased taps (PIL's resample): the kernel's support grows by the downscale factor; weights are normalised. */
function antialiasTaps(outSize: number, inSize: number, kernel: (x: number) => number, halfWidth: number): Taps {
  const scale = inSize / outSize;
  const support = scale >= 1 ? halfWidth * scale : halfWidth;
  const stretch = scale >= 1 ? scale : 1;
  return range(outSize).map((i) => {
    const center = scale * (i + 0.5);
    const first = Math.max(Math.trunc(center - support + 0.5), 0);
    const last = Math.min(Math.trunc(center + support + 0.5), inSize);
    const taps: [number, number][] = [];
    for (let j = first; j < last; j++) taps.push([j, kernel((j - center + 0.5) / stretch)]);
    const total = taps.reduce((s, [, wt]) => s + wt, 0);
    return taps.map(([j, wt]) => [j, wt / total] as [number, number]);
  });
}
const triangle = (x: number) => Math.max(0, 1 - Math.abs(x));

test("interpolate nearest and bilinear (align corners on and off)", () => {
  const h = 4;
  const w = 5;
  const plane = uniformArray(h * w, 3);
  const x = f64Flat(plane, [1, 1, h, w]);
  for (const [outH, outW] of [[2, 3], [7, 9], [4, 5]]) {
    assertClose(F.interpolate(x, { size: [outH, outW], mode: "nearest" }), resizeSeparable(plane, h, w, nearestTaps(outH, h), nearestTaps(outW, w)), 1e-14, { message: `nearest ${outH}x${outW}` });
    for (const alignCorners of [false, true]) {
      const out = F.interpolate(x, { size: [outH, outW], mode: "bilinear", alignCorners });
      assert.deepEqual(out.shape, [1, 1, outH, outW]);
      const ref = resizeSeparable(plane, h, w, bilinearTaps(outH, h, alignCorners), bilinearTaps(outW, w, alignCorners));
      assertClose(out, ref, 1e-12, { message: `bilinear ${outH}x${outW} alignCorners=${alignCorners}` });
    }
  }
});

test("interpolate bicubic, plain (a = -0.75) and antialiased (a = -0.5, widened support)", () => {
  const plane = uniformArray(16, 8, 0, 1);
  const x = f64Flat(plane, [1, 1, 4, 4]);
  for (const [outH, outW] of [[2, 2], [6, 7], [3, 5]]) {
    const out = F.interpolate(x, { size: [outH, outW], mode: "bicubic" });
    assertClose(out, resizeSeparable(plane, 4, 4, bicubicTaps(outH, 4), bicubicTaps(outW, 4)), 1e-12, { message: `bicubic ${outH}x${outW}` });
  }
  // 4x4 -> 2x2 with antialias: scale 2, so the cubic kernel spans 4 input pixels each side of the centre.
  const cubic = (t: number) => keysCubic(t, -0.5);
  const aa = F.interpolate(x, { size: [2, 2], mode: "bicubic", antialias: true });
  const taps = antialiasTaps(2, 4, cubic, 2);
  assertClose(aa, resizeSeparable(plane, 4, 4, taps, taps), 1e-12, { message: "bicubic antialias 4x4->2x2" });
  // Written out for output 0: centre 1, taps at -0.25, 0.25, 0.75, 1.25 (input pixels 0..3 stretched by 1/2).
  const raw = [-0.25, 0.25, 0.75, 1.25].map(cubic);
  const total = raw.reduce((a, b) => a + b, 0);
  assertClose(taps[0].map(([, wt]) => wt), raw.map((r) => r / total), 1e-15);
  // Uneven scale and upscaling (antialias then equals the plain kernel with a = -0.5, renormalised at the edges).
  const wide = uniformArray(6 * 9, 21, 0, 1);
  const y = f64Flat(wide, [1, 1, 6, 9]);
  for (const [outH, outW] of [[4, 2], [8, 11]]) {
    const out = F.interpolate(y, { size: [outH, outW], mode: "bicubic", antialias: true });
    const ref = resizeSeparable(wide, 6, 9, antialiasTaps(outH, 6, cubic, 2), antialiasTaps(outW, 9, cubic, 2));
    assertClose(out, ref, 1e-12, { message: `bicubic antialias 6x9->${outH}x${outW}` });
    const bilinearAa = F.interpolate(y, { size: [outH, outW], mode: "bilinear", antialias: true });
    const bilinearRef = resizeSeparable(wide, 6, 9, antialiasTaps(outH, 6, triangle, 1), antialiasTaps(outW, 9, triangle, 1));
    assertClose(bilinearAa, bilinearRef, 1e-12, { message: `bilinear antialias 6x9->${outH}x${outW}` });
  }
});

test("interpolate keeps batch and channel planes separate", () => {
  const x = arange(2 * 3 * 2 * 2, undefined, 1, { device: DEVICE, dtype: "float64" }).view(2, 3, 2, 2);
  const out: Tensor = F.interpolate(x, { size: [4, 4], mode: "nearest" });
  assert.deepEqual(out.shape, [2, 3, 4, 4]);
  const plane = values(out.select(1, 2).select(0, 1));
  const base = (1 * 3 + 2) * 4;
  assert.deepEqual(plane, [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3].map((v) => v + base));
});
