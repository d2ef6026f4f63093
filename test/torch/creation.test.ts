// Creation, host transfer, properties and dtype conversion, checked against values computed in plain JS.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  arange, eye, fromBuffer, full, getRngState, linspace, manualSeed, ones, rand, randint, randn, setRngState, tensor, zeros,
  zerosLike, onesLike, fullLike, tidy, toDType,
} from "../../src/torch/index.js";
import { DEVICE, ON_CUDA, assertClose, assertThrowsWith, values } from "../helpers.js";

const on = { device: DEVICE };
// torch names the first CUDA device "cuda:0" even when it was asked for as "cuda".
const deviceName = ON_CUDA && !DEVICE.includes(":") ? "cuda:0" : DEVICE;

test("zeros, ones, full, eye and the *Like variants", () => {
  const z = zeros([2, 3], on);
  assert.deepEqual(z.shape, [2, 3]);
  assert.equal(z.dtype, "float32");
  assert.equal(z.device, deviceName);
  assertClose(z, [[0, 0, 0], [0, 0, 0]]);
  assertClose(ones(4, { ...on, dtype: "float64" }), [1, 1, 1, 1]);
  assert.equal(ones(4, { ...on, dtype: "int32" }).dtype, "int32");
  const f = full([2, 2], 7.5, on);
  assert.equal(f.dtype, "float32");
  assertClose(f, [[7.5, 7.5], [7.5, 7.5]]);
  assert.equal(full([3], 3, { ...on, dtype: "int64" }).dtype, "int64");
  assert.deepEqual(full([2], true, on).toArray(), [true, true]);
  assert.equal(full([2], true, on).dtype, "bool");
  assertClose(eye(3, on), [[1, 0, 0], [0, 1, 0], [0, 0, 1]]);
  const base = full([2, 1], 2, { ...on, dtype: "float64" });
  assertClose(zerosLike(base), [[0], [0]]);
  assert.equal(onesLike(base).dtype, "float64");
  assertClose(fullLike(base, -3), [[-3], [-3]]);
  assert.deepEqual(zeros([], on).shape, []);
  assert.equal(zeros([0, 4], on).numel(), 0);
});

test("arange: integers give int64, fractions float32, as torch.arange", () => {
  const ints = arange(5, undefined, 1, on);
  assert.equal(ints.dtype, "int64");
  assert.deepEqual(ints.toArray(), [0, 1, 2, 3, 4]);
  assert.deepEqual(arange(2, 11, 3, on).toArray(), [2, 5, 8]);
  assert.deepEqual(arange(5, 0, -2, on).toArray(), [5, 3, 1]);
  const floats = arange(1, 2.5, 0.5, on);
  assert.equal(floats.dtype, "float32");
  assertClose(floats, [1, 1.5, 2]);
  const tenths = arange(0, 1, 0.1, on);
  assert.equal(tenths.numel(), 10);
  assertClose(tenths, Array.from({ length: 10 }, (_, i) => i * 0.1), 1e-6);
  assert.equal(arange(0, 4, 1, { ...on, dtype: "float64" }).dtype, "float64");
});

test("linspace includes both ends", () => {
  assertClose(linspace(0, 1, 5, on), [0, 0.25, 0.5, 0.75, 1], 1e-7);
  const wide = linspace(-3, 7, 11, { ...on, dtype: "float64" });
  assert.equal(wide.dtype, "float64");
  assertClose(wide, Array.from({ length: 11 }, (_, i) => -3 + i), 1e-12);
  assertClose(linspace(2, 2, 1, on), [2]);
});

test("rand, randn and randint stay in range and have the right moments", () => {
  const n = 20000;
  const u = values(rand([n], on));
  assert.ok(u.every((x) => x >= 0 && x < 1), "rand values in [0, 1)");
  const uMean = u.reduce((a, b) => a + b, 0) / n;
  assert.ok(Math.abs(uMean - 0.5) < 0.02, `rand mean ${uMean}`);
  const g = values(randn([n], { ...on, dtype: "float64" }));
  const gMean = g.reduce((a, b) => a + b, 0) / n;
  const gVar = g.reduce((a, b) => a + (b - gMean) ** 2, 0) / (n - 1);
  assert.ok(Math.abs(gMean) < 0.05, `randn mean ${gMean}`);
  assert.ok(Math.abs(gVar - 1) < 0.05, `randn variance ${gVar}`);
  const ints = randint(3, 7, [2000], on);
  assert.equal(ints.dtype, "int64");
  const seen = new Set(values(ints));
  assert.deepEqual([...seen].sort(), [3, 4, 5, 6]);
});

test("manualSeed makes random draws reproducible; rng state round-trips", () => {
  manualSeed(1234);
  const a = values(randn([6], on));
  const b = values(rand([3], on));
  manualSeed(1234);
  assert.deepEqual(values(randn([6], on)), a);
  assert.deepEqual(values(rand([3], on)), b);
  manualSeed(99);
  assert.notDeepEqual(values(randn([6], on)), a);
  manualSeed(5);
  const state = getRngState(DEVICE);
  const first = values(randint(0, 1000, [8], on));
  setRngState(state, DEVICE);
  assert.deepEqual(values(randint(0, 1000, [8], on)), first);
});

test("tensor() from nested arrays infers shape and dtype", () => {
  const t = tensor([[1, 2, 3], [4, 5, 6]], on);
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.dtype, "float32");
  assert.deepEqual(t.toArray(), [[1, 2, 3], [4, 5, 6]]);
  const b = tensor([true, false, true], on);
  assert.equal(b.dtype, "bool");
  assert.deepEqual(b.toArray(), [true, false, true]);
  // Numbers become bools by nonzero-ness (0.5 is true), stored as proper 0/1 bytes.
  const fromNumbers = tensor([2, 0, 0.5, -1], { ...on, dtype: "bool" });
  assert.deepEqual(fromNumbers.toArray(), [true, false, true, true]);
  assert.deepEqual(fromNumbers.to("int64").toArray(), [1, 0, 1, 1]);
  assert.deepEqual(tensor([300, -1], { ...on, dtype: "uint8" }).toArray(), [44, 255]);
  const big = tensor([2 ** 40 + 1, -(2 ** 33)], { ...on, dtype: "int64" });
  assert.deepEqual(big.toArray(), [2 ** 40 + 1, -(2 ** 33)]);
  assert.equal(tensor([1.5, 2], { ...on, dtype: "float64" }).toArray().toString(), "1.5,2");
  assert.deepEqual(tensor([[]], on).shape, [1, 0]);
  assertThrowsWith(() => tensor([[1, 2], [3]]), "ragged");
});

test("tensor() from TypedArrays and Buffers, and fromBuffer over raw bytes", () => {
  const f32 = tensor(new Float32Array([0.5, -1.25, 3]), on);
  assert.equal(f32.dtype, "float32");
  assertClose(f32, [0.5, -1.25, 3]);
  const f64 = tensor(new Float64Array([1 / 3, 2, 3, 4]), { ...on, shape: [2, 2] });
  assert.equal(f64.dtype, "float64");
  assertClose(f64, [[1 / 3, 2], [3, 4]], 0);
  assert.equal(tensor(new Int32Array([1, -2]), on).dtype, "int32");
  assert.deepEqual(tensor(new BigInt64Array([5n, -9n]), on).toArray(), [5, -9]);
  // Buffer.from on a short array uses a slice of Node's shared pool: a non-zero byteOffset.
  const buffer = Buffer.from([1, 2, 250]);
  const u8 = tensor(buffer, on);
  assert.equal(u8.dtype, "uint8");
  assert.deepEqual(u8.toArray(), [1, 2, 250]);
  const bytes = Buffer.alloc(16);
  bytes.writeFloatLE(1.5, 0);
  bytes.writeFloatLE(-2, 4);
  bytes.writeFloatLE(8, 8);
  bytes.writeFloatLE(0.25, 12);
  const fromBytes = fromBuffer(bytes, [2, 2], "float32", on);
  assertClose(fromBytes, [[1.5, -2], [8, 0.25]], 0);
  const offsetView = new Float32Array(new Float32Array([9, 1, 2, 3]).buffer, 4, 3);
  assertClose(fromBuffer(offsetView, [3], "float32", on), [1, 2, 3], 0);
  assertThrowsWith(() => fromBuffer(bytes, [3], "float32"), "fromBuffer", "16 bytes", "needs 12");
  assertThrowsWith(() => tensor(new Uint16Array([1, 2])), "explicit dtype");
});

test("properties, to(), cpu(), toArray() and item()", () => {
  const t = tensor([[1, 2], [3, 4]], { ...on, dtype: "float64" });
  assert.deepEqual(t.shape, [2, 2]);
  assert.equal(t.ndim, 2);
  assert.equal(t.numel(), 4);
  assert.equal(t.size(-1), 2);
  assert.equal(t.dtype, "float64");
  assert.equal(t.device, deviceName);
  assert.equal(t.isCuda, ON_CUDA);
  const cpu = t.cpu();
  assert.equal(cpu.device, "cpu");
  assert.deepEqual(cpu.toArray(), [[1, 2], [3, 4]]);
  assert.equal(cpu.to(DEVICE).device, deviceName);
  const asInt = t.to("int32");
  assert.equal(asInt.dtype, "int32");
  assert.equal(asInt.device, deviceName);
  const both = cpu.to({ dtype: "float32", device: DEVICE });
  assert.equal(both.dtype, "float32");
  assert.equal(both.device, deviceName);
  assert.equal(tensor([2.5], on).item(), 2.5);
  assert.equal(tensor([7], { ...on, dtype: "int64" }).item(), 7);
  assert.equal(tensor([[3]], { ...on, dtype: "float64" }).sum().item(), 3);
  assert.equal(tensor([true], on).item() as unknown, true);
  assert.equal(full([], 4, on).toArray(), 4);
  assertThrowsWith(() => t.item(), "item", "one element");
});

test("dtype conversions follow torch: truncation to int, nonzero to bool", () => {
  const t = tensor([-1.7, -0.2, 0, 0.6, 2.9], { ...on, dtype: "float64" });
  assert.deepEqual(t.to("int64").toArray(), [-1, 0, 0, 0, 2]);
  assert.deepEqual(t.to("bool").toArray(), [true, true, false, true, true]);
  assert.deepEqual(tensor([300, -1], { ...on, dtype: "int32" }).to("uint8").toArray(), [44, 255]);
  assert.equal(tensor([true, false], on).to("float32").sum().item(), 1);
  assert.equal(toDType("bf16"), "bfloat16");
  assert.equal(toDType("torch.float16"), "float16");
  assertThrowsWith(() => toDType("float8"), "unknown dtype 'float8'");
  assertThrowsWith(() => toDType("constructor"), "unknown dtype 'constructor'");
});

// Round to the nearest value with `mantissaBits` fraction bits and minimum normal exponent `minExponent`
// (ties to even): the IEEE conversion float32 -> float16 / bfloat16 performs.
function roundToFormat(x: number, mantissaBits: number, minExponent: number, maxFinite: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const magnitude = Math.abs(x);
  let exponent = Math.floor(Math.log2(magnitude));
  while (2 ** exponent > magnitude) exponent--;
  while (2 ** (exponent + 1) <= magnitude) exponent++;
  const quantum = 2 ** (Math.max(exponent, minExponent) - mantissaBits);
  const scaled = magnitude / quantum;
  let units = Math.floor(scaled);
  const remainder = scaled - units;
  if (remainder > 0.5 || (remainder === 0.5 && units % 2 === 1)) units++;
  const rounded = units * quantum;
  // Values that round past the largest finite number become infinity.
  return Math.sign(x) * (rounded > maxFinite ? Infinity : rounded);
}
const toHalf = (x: number) => roundToFormat(x, 10, -14, 65504);
const toBFloat16 = (x: number) => roundToFormat(x, 7, -126, 3.3895313892515355e38);

test("float16 and bfloat16 round trips round to nearest even", () => {
  const source = new Float32Array([1, -2.5, 1 / 3, 0.1, 1000.7, 65504, 70000, 1e-6, 3.14159, -7.77e-3, 1.00390625, 1.01171875, 257.5]);
  const expectedHalf = Array.from(source, toHalf);
  const expectedBf16 = Array.from(source, toBFloat16);
  const base = tensor(source, on);
  const half = base.to("float16");
  assert.equal(half.dtype, "float16");
  assertClose(half.to("float32"), expectedHalf, 0);
  assertClose(half.data(), expectedHalf, 0);
  const bf16 = base.to("bf16");
  assert.equal(bf16.dtype, "bfloat16");
  assertClose(bf16.to("float64"), expectedBf16, 0);
  assertClose(bf16.data(), expectedBf16, 0);
  // Raw bit patterns: 0x3f80 = 1, 0xc000 = -2, 0x3fc0 = 1.5 (bfloat16); 0x3c00 = 1, 0xc000 = -2, 0x7bff = 65504 (float16).
  assertClose(tensor(new Uint16Array([0x3f80, 0xc000, 0x3fc0]), { ...on, dtype: "bfloat16" }), [1, -2, 1.5], 0);
  assertClose(tensor(new Uint16Array([0x3c00, 0xc000, 0x7bff]), { ...on, dtype: "float16" }), [1, -2, 65504], 0);
  // The round trip back to the narrow type is exact.
  assert.ok(bf16.to("float32").to("bfloat16").equal(bf16));
});

test("tidy frees the temporaries of a creation burst", () => {
  const kept = tidy(() => {
    zeros([3], on);
    ones([3], on);
    return arange(3, undefined, 1, on);
  });
  assert.deepEqual(kept.toArray(), [0, 1, 2]);
});
