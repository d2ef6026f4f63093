// Shared test helpers: the device the suite runs on, float64 tensor construction, comparison against
// plain-JS references, and a seeded generator for reference data.
import assert from "node:assert/strict";
import { Tensor, tensor, type CreateOptions, type NestedArray } from "../src/torch/index.js";
import { seededRandom } from "../src/torch/seeded_random.js";

export { seededRandom };

/** The device the tensor tests run on: VLMKIT_TEST_DEVICE=cuda runs the same suite on the GPU. */
export const DEVICE: string = process.env.VLMKIT_TEST_DEVICE ?? "cpu";
export const ON_CUDA = DEVICE.startsWith("cuda");

/** A float64 tensor on DEVICE from nested arrays. */
export function f64(data: NestedArray<number>, options: CreateOptions = {}): Tensor {
  return tensor(data, { dtype: "float64", device: DEVICE, ...options });
}

/** A float64 tensor on DEVICE from flat row-major values and a shape. */
export function f64Flat(data: ArrayLike<number>, shape: number[], options: CreateOptions = {}): Tensor {
  return tensor(Float64Array.from(data), { shape, dtype: "float64", device: DEVICE, ...options });
}

/** An int64 tensor on DEVICE. */
export function i64(data: NestedArray<number>, options: CreateOptions = {}): Tensor {
  return tensor(data, { dtype: "int64", device: DEVICE, ...options });
}

/** Shape of a (regular) nested array. */
export function shapeOfNested(data: unknown): number[] {
  const shape: number[] = [];
  let level = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

/** Flattens nested arrays (row-major) to a flat list of numbers. */
export function flat(data: unknown): number[] {
  if (Array.isArray(data)) return data.flatMap((x) => flat(x));
  if (ArrayBuffer.isView(data)) return Array.from(data as unknown as ArrayLike<number | bigint>, Number);
  if (typeof data === "boolean") return [data ? 1 : 0];
  return [data as number];
}

/** The tensor's elements as flat JS numbers (bools as 0/1), fetched from any device. */
export function values(t: Tensor): number[] {
  return flat(t.toArray());
}

/**
 * Asserts that a tensor equals the expected values within |actual - expected| <= atol + rtol * |expected|.
 * Nested expected arrays also fix the shape; a flat expected array with `shape` checks that shape.
 * NaN matches NaN and infinities must match exactly.
 */
export function assertClose(
  actual: Tensor | number | ArrayLike<number> | BigInt64Array | NestedArray<number>,
  expected: number | ArrayLike<number> | NestedArray<number>,
  atol = 1e-9,
  options: { rtol?: number; shape?: number[]; message?: string } = {},
): void {
  const rtol = options.rtol ?? 0;
  const label = options.message ? `${options.message}: ` : "";
  let actualValues: number[];
  if (actual instanceof Tensor) {
    const expectedShape = options.shape ?? (Array.isArray(expected) && Array.isArray(expected[0]) ? shapeOfNested(expected) : null);
    if (expectedShape !== null) assert.deepEqual(actual.shape, expectedShape, `${label}shape`);
    actualValues = values(actual);
  } else {
    actualValues = flat(actual);
  }
  const expectedValues = flat(expected);
  assert.equal(actualValues.length, expectedValues.length, `${label}number of elements`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expectedValues.length; i++) {
    const a = actualValues[i];
    const e = expectedValues[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!Number.isFinite(e) && a === e) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${label}element ${worst}: got ${actualValues[worst]}, expected ${expectedValues[worst]} (atol ${atol}, rtol ${rtol})\n` +
        `  actual:   [${actualValues.slice(0, 24).join(", ")}${actualValues.length > 24 ? ", ..." : ""}]\n` +
        `  expected: [${expectedValues.slice(0, 24).join(", ")}${expectedValues.length > 24 ? ", ..." : ""}]`,
    );
  }
}

/** Asserts that fn throws an Error whose message contains every fragment (strings or regexps). */
export function assertThrowsWith(fn: () => unknown, ...fragments: (string | RegExp)[]): Error {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof Error, `expected an Error to be thrown, got ${caught === undefined ? "no exception" : String(caught)}`);
  for (const fragment of fragments) {
    const matches = typeof fragment === "string" ? caught.message.includes(fragment) : fragment.test(caught.message);
    assert.ok(matches, `error message ${JSON.stringify(caught.message)} does not contain ${String(fragment)}`);
  }
  return caught;
}

/** n uniform numbers in [low, high) from a seeded generator. */
export function uniformArray(n: number, seed: number, low = -1, high = 1): number[] {
  const next = seededRandom(seed);
  return Array.from({ length: n }, () => low + (high - low) * next());
}

/** A float64 tensor on DEVICE with seeded uniform values in [low, high). */
export function randomF64(shape: number[], seed: number, low = -1, high = 1, options: CreateOptions = {}): Tensor {
  return f64Flat(uniformArray(shape.reduce((a, b) => a * b, 1), seed, low, high), shape, options);
}

/** Row-major strides of a shape. */
export function stridesOf(shape: number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  return strides;
}

/** Element of a flat row-major array at a multi-dimensional index. */
export function at(data: ArrayLike<number>, shape: number[], index: number[]): number {
  const strides = stridesOf(shape);
  let offset = 0;
  for (let d = 0; d < shape.length; d++) offset += index[d] * strides[d];
  return data[offset];
}

/** Plain-JS matrix product of row-major [m, k] and [k, n]. */
export function matmulRef(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): number[] {
  const out = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
    out[i * n + j] = s;
  }
  return out;
}

/** Plain-JS softmax of one row. */
export function softmaxRow(row: number[]): number[] {
  const max = Math.max(...row);
  const exps = row.map((x) => Math.exp(x - max));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** Error function (Abramowitz–Stegun is too coarse for 1e-9 checks; this is a series/continued-fraction pair). */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const z = Math.abs(x);
  if (z < 2.5) {
    // Maclaurin series: erf(z) = 2/sqrt(pi) * sum_n (-1)^n z^(2n+1) / (n! (2n+1))
    let term = z;
    let sum = z;
    for (let n = 1; n < 80; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    return (sign * 2 * sum) / Math.sqrt(Math.PI);
  }
  // Continued fraction for erfc(z), accurate for z >= 2.5.
  let fraction = 0;
  for (let n = 60; n >= 1; n--) fraction = n / 2 / (z + fraction);
  const erfc = Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + fraction);
  return sign * (1 - erfc);
}
