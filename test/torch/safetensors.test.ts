import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  readSafetensors, writeSafetensors, writeShardedSafetensors, SafetensorsFile, SafetensorsCheckpoint,
  tensor, full, zeros, randn, arange, liveTensorCount, dispose, type Tensor,
} from "../../src/index.js";
import { alignPadding, assemble, bfloat16Bits, bytesOf, rawBytes, scratchFolder } from "./safetensors_helpers.js";
import { DEVICE } from "../helpers.js";

function everyDType(): Record<string, Tensor> {
  return {
    f32: tensor([[1.5, -2, 3], [0.1, 1e30, -1e-30]]),
    f64: tensor([Math.PI, -Math.E, 1e-300], { dtype: "float64" }),
    f16: tensor([1, -2, 0.5, 65504, 2 ** -24], { dtype: "float16" }),
    bf16: tensor([1, -2, 0.5, 3.140625, 2 ** 100], { dtype: "bfloat16" }),
    i64: tensor(new BigInt64Array([2n ** 40n + 3n, -5n, 2n ** 53n + 1n, -(2n ** 63n)])),
    i32: tensor(new Int32Array([-2147483648, 2147483647, 7])),
    i16: tensor(new Int16Array([-32768, 32767, -1])),
    i8: tensor(new Int8Array([-128, 127, 0])),
    u8: tensor(new Uint8Array([0, 255, 17])),
    bool: tensor([[true, false], [false, true]]),
    scalar: full([], 7.25),
    empty_rows: zeros([0, 4]),
    empty_cols: zeros([3, 0], { dtype: "int64" }),
    transposed: randn([3, 4]).transpose(0, 1),
  };
}

test("round trip of every dtype, 0-d and empty tensors keeps dtype, shape and bytes", () => {
  const path = join(scratchFolder(), "all.safetensors");
  const original = everyDType();
  writeSafetensors(path, original);
  const loaded = readSafetensors(path);
  assert.deepEqual([...loaded.keys()].sort(), Object.keys(original).sort());
  for (const [name, t] of Object.entries(original)) {
    const back = loaded.get(name)!;
    assert.equal(back.dtype, t.dtype, name);
    assert.deepEqual(back.shape, t.shape, name);
    assert.ok(rawBytes(back).equals(rawBytes(t)), `bytes of ${name}`);
  }
  assert.deepEqual(loaded.get("i64")!.data(), new BigInt64Array([2n ** 40n + 3n, -5n, 2n ** 53n + 1n, -(2n ** 63n)]));
  assert.equal(loaded.get("scalar")!.item(), 7.25);
  dispose([original, loaded]);
});

test("metadata round trips; a file without metadata reports {}", () => {
  const folder = scratchFolder();
  const t = tensor([1, 2]);
  writeSafetensors(join(folder, "m.safetensors"), { t }, { format: "pt", "step": "1200", unicode: "grüße ✓" });
  assert.deepEqual(new SafetensorsFile(join(folder, "m.safetensors")).metadata, { format: "pt", step: "1200", unicode: "grüße ✓" });
  writeSafetensors(join(folder, "none.safetensors"), { t });
  assert.deepEqual(new SafetensorsFile(join(folder, "none.safetensors")).metadata, {});
  t.dispose();
});

// A file built by hand: keys sorted, __metadata__ first, compact JSON, header padded to 8 bytes, data in key order.
function handMadeFile() {
  const a = new Float32Array([1, -2.5, 3.25, 0.001]);
  const b = new Uint16Array([0x3f80, 0xc000, 0x3f00]); // bf16 1, -2, 0.5
  const c = new BigInt64Array([-3n, 2n ** 50n + 1n]);
  const d = new Uint8Array([1, 0, 1]);
  const e = new Float64Array([2.5]);
  const header =
    '{"__metadata__":{"format":"pt","note":"hand-made file"},' +
    '"a_f32":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},' +
    '"b_bf16":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]},' +
    '"c_i64":{"dtype":"I64","shape":[2],"data_offsets":[22,38]},' +
    '"d_bool":{"dtype":"BOOL","shape":[3],"data_offsets":[38,41]},' +
    '"e_scalar":{"dtype":"F64","shape":[],"data_offsets":[41,49]},' +
    '"f_empty":{"dtype":"F32","shape":[0,3],"data_offsets":[49,49]}}';
  assert.ok(alignPadding(header) > 0, "the header needs padding, so the test covers it");
  const bytes = assemble(header, [bytesOf(a), bytesOf(b), bytesOf(c), d, bytesOf(e)], alignPadding(header));
  return { bytes, a, b, c, d, e };
}

test("reads a hand-assembled file exactly", () => {
  const { bytes, a, b, c, d, e } = handMadeFile();
  const path = join(scratchFolder(), "hand.safetensors");
  writeFileSync(path, bytes);
  const file = new SafetensorsFile(path);
  assert.deepEqual(file.keys(), ["a_f32", "b_bf16", "c_i64", "d_bool", "e_scalar", "f_empty"]);
  assert.deepEqual(file.metadata, { format: "pt", note: "hand-made file" });
  assert.deepEqual(file.info("b_bf16"), { dtype: "bfloat16", fileDType: "BF16", shape: [3], byteLength: 6, dataOffsets: [16, 22] });
  assert.equal(file.dataStart % 8, 0);
  const loaded = readSafetensors(path);
  assert.deepEqual(loaded.get("a_f32")!.toArray(), [[1, -2.5], [3.25, Math.fround(0.001)]]);
  assert.ok(rawBytes(loaded.get("a_f32")!).equals(bytesOf(a)));
  assert.equal(loaded.get("b_bf16")!.dtype, "bfloat16");
  assert.deepEqual(loaded.get("b_bf16")!.toArray(), [1, -2, 0.5]);
  assert.ok(rawBytes(loaded.get("b_bf16")!).equals(bytesOf(b)));
  assert.deepEqual(loaded.get("c_i64")!.data(), c);
  assert.deepEqual(loaded.get("d_bool")!.toArray(), [true, false, true]);
  assert.ok(rawBytes(loaded.get("d_bool")!).equals(d));
  assert.deepEqual(loaded.get("e_scalar")!.shape, []);
  assert.equal(loaded.get("e_scalar")!.item(), e[0]);
  assert.deepEqual(loaded.get("f_empty")!.shape, [0, 3]);
  dispose(loaded);
});

test("writes byte for byte the hand-assembled file (keys sorted whatever the input order)", () => {
  const { bytes, a, b, c, d, e } = handMadeFile();
  const path = join(scratchFolder(), "ours.safetensors");
  const tensors = new Map<string, Tensor>([
    ["e_scalar", full([], e[0], { dtype: "float64" })],
    ["c_i64", tensor(c)],
    ["a_f32", tensor(a, { shape: [2, 2] })],
    ["f_empty", zeros([0, 3])],
    ["d_bool", tensor([true, false, true])],
    ["b_bf16", tensor(b, { dtype: "bfloat16" })],
  ]);
  writeSafetensors(path, tensors, { format: "pt", note: "hand-made file" });
  const written = readFileSync(path);
  assert.equal(written.toString("latin1"), bytes.toString("latin1"));
  assert.ok(written.equals(bytes));
  dispose(tensors);
});

test("reads files laid out differently: data not in key order, unaligned space-padded header, integer-like names", () => {
  const x = new Float32Array([10, 20, 30]);
  const y = new Int32Array([-7]);
  const z = new Uint8Array([9, 8]);
  // Data order: y, z, x; the header is 5 spaces longer than its JSON, so the data starts unaligned.
  const header =
    '{"x":{"dtype":"F32","shape":[3],"data_offsets":[6,18]},"7":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},' +
    '"y":{"shape":[1,1],"data_offsets":[0,4],"dtype":"I32"}}';
  const path = join(scratchFolder(), "layout.safetensors");
  writeFileSync(path, assemble(header, [bytesOf(y), z, bytesOf(x)], 5));
  const file = new SafetensorsFile(path);
  assert.deepEqual(file.keys(), ["y", "7", "x"]);
  assert.equal(file.metadata && Object.keys(file.metadata).length, 0);
  const loaded = readSafetensors(path);
  assert.deepEqual(loaded.get("x")!.toArray(), [10, 20, 30]);
  assert.deepEqual(loaded.get("y")!.toArray(), [[-7]]);
  assert.deepEqual(loaded.get("7")!.toArray(), [9, 8]);
  dispose(loaded);
});

test("get() converts dtype on load and frees the CPU copy", () => {
  const values = [1, 1 + 2 ** -10, 1 + 2 ** -8, 1 + 2 ** -8 + 2 ** -12, -3.75, 0.001, 65519.5];
  const path = join(scratchFolder(), "convert.safetensors");
  const source = tensor(values);
  const counts = tensor(new BigInt64Array([3n, -(2n ** 40n)]));
  writeSafetensors(path, { values: source, counts });
  dispose([source, counts]);
  const file = new SafetensorsFile(path);

  const before = liveTensorCount();
  const bf16 = file.get("values", { dtype: "bf16" });
  assert.equal(liveTensorCount(), before + 1, "only the converted tensor stays alive");
  assert.equal(bf16.dtype, "bfloat16");
  const expectedBits = values.map(bfloat16Bits);
  assert.deepEqual(Array.from(new Uint16Array(rawBytes(bf16).buffer.slice(0))), expectedBits);

  const f64 = file.get("values", { dtype: "float64", device: "cpu" });
  assert.deepEqual(f64.toArray(), values.map(Math.fround));
  const counted = file.get("counts", { dtype: "float32" });
  assert.deepEqual(counted.toArray(), [3, -(2 ** 40)]);
  dispose([bf16, f64, counted]);
  assert.equal(liveTensorCount(), before);
});

test("get() reads only its own tensor: a file truncated inside another tensor's data still yields the first", () => {
  const path = join(scratchFolder(), "lazy.safetensors");
  const first = tensor([1.25, -4]);
  const second = randn([1000]);
  writeSafetensors(path, { a_first: first, b_second: second });
  const file = new SafetensorsFile(path);
  truncateSync(path, file.dataStart + 8 + 100); // cuts b_second after 25 of its 1000 floats
  const again = file.get("a_first");
  assert.deepEqual(again.toArray(), [1.25, -4]);
  assert.throws(() => file.get("b_second"), (error: Error) => {
    assert.match(error.message, /b_second/);
    assert.ok(error.message.includes(path), error.message);
    assert.match(error.message, /truncated/);
    return true;
  });
  dispose([first, second, again]);
});

test("get() refuses a file replaced since it was opened", () => {
  const path = join(scratchFolder(), "replaced.safetensors");
  const t = tensor([1, 2, 3]);
  writeSafetensors(path, { t });
  const file = new SafetensorsFile(path);
  writeSafetensors(path, { t, other: t });
  assert.throws(() => file.get("t"), (error: Error) => error.message.includes(path) && /replaced/.test(error.message));
  t.dispose();
});

test("sharded write follows transformers' split and reads back through the index", () => {
  const folder = scratchFolder();
  // Insertion order drives the split, as in huggingface_hub: a tensor larger than the limit gets its own shard at once.
  const tensors = new Map<string, Tensor>([
    ["layers.0.w", randn([5, 4])], // 80 bytes
    ["layers.0.b", randn([4])], // 16
    ["big", randn([40])], // 160 > 100: alone
    ["layers.1.w", randn([5, 4])],
    ["layers.1.b", randn([4])],
    ["norm", randn([4])],
  ]);
  const result = writeShardedSafetensors(folder, tensors, { maxShardBytes: 100 });
  const shard = (i: number) => `model-0000${i}-of-00004.safetensors`;
  assert.deepEqual(result, { files: [shard(1), shard(2), shard(3), shard(4)], index: "model.safetensors.index.json" });
  assert.deepEqual(readdirSync(folder).sort(), [...result.files, "model.safetensors.index.json"].sort());
  const index = JSON.parse(readFileSync(join(folder, "model.safetensors.index.json"), "utf8"));
  assert.deepEqual(index, {
    metadata: { total_size: 80 + 16 + 160 + 80 + 16 + 16 },
    weight_map: {
      big: shard(1), "layers.0.b": shard(2), "layers.0.w": shard(2), "layers.1.b": shard(3), "layers.1.w": shard(3), norm: shard(4),
    },
  });
  assert.deepEqual(Object.keys(index.weight_map), Object.keys(index.weight_map).sort(), "weight_map is sorted like transformers' index");
  for (const file of result.files) assert.deepEqual(new SafetensorsFile(join(folder, file)).metadata, { format: "pt" });
  assert.deepEqual(new SafetensorsFile(join(folder, shard(2))).keys(), ["layers.0.b", "layers.0.w"]);

  for (const opened of [new SafetensorsCheckpoint(folder), new SafetensorsCheckpoint(join(folder, "model.safetensors.index.json"))]) {
    assert.deepEqual(opened.keys().sort(), [...tensors.keys()].sort());
    assert.equal(opened.has("norm"), true);
    assert.equal(opened.has("nope"), false);
    assert.deepEqual(opened.metadata, { total_size: 368 });
    assert.deepEqual(opened.info("big").shape, [40]);
    const all = opened.loadTensors();
    for (const [name, t] of tensors) assert.ok(rawBytes(all.get(name)!).equals(rawBytes(t)), name);
    const some = opened.loadTensors(["norm", "big"], { dtype: "float64" });
    assert.deepEqual([...some.keys()], ["norm", "big"]);
    assert.equal(some.get("big")!.dtype, "float64");
    assert.deepEqual(some.get("big")!.toArray(), tensors.get("big")!.toArray());
    dispose([all, some]);
  }

  // Everything fits in one file: model.safetensors, no index, and the earlier shards and index are gone.
  const single = writeShardedSafetensors(folder, tensors, { metadata: { step: "3" } });
  assert.deepEqual(single, { files: ["model.safetensors"], index: null });
  assert.deepEqual(readdirSync(folder), ["model.safetensors"]);
  const checkpoint = new SafetensorsCheckpoint(folder);
  assert.deepEqual(checkpoint.metadata, { format: "pt", step: "3" });
  assert.deepEqual(checkpoint.keys(), [...tensors.keys()].sort());
  const norm = checkpoint.get("norm");
  assert.ok(rawBytes(norm).equals(rawBytes(tensors.get("norm")!)));

  // And back to shards: the stale model.safetensors goes, or the folder would hold two checkpoints.
  writeShardedSafetensors(folder, tensors, { maxShardBytes: 200 });
  assert.ok(!existsSync(join(folder, "model.safetensors")));
  assert.ok(existsSync(join(folder, "model.safetensors.index.json")));
  dispose([tensors, norm]);
});

test("a checkpoint folder without an index uses model.safetensors, else its only .safetensors file", () => {
  const folder = scratchFolder();
  const t = tensor([4, 5]);
  writeSafetensors(join(folder, "adapter_model.safetensors"), { "lora.A": t });
  const checkpoint = new SafetensorsCheckpoint(folder);
  assert.ok(checkpoint.path.endsWith("adapter_model.safetensors"));
  assert.deepEqual(checkpoint.keys(), ["lora.A"]);
  writeSafetensors(join(folder, "model.safetensors"), { w: t });
  assert.deepEqual(new SafetensorsCheckpoint(folder).keys(), ["w"]);
  const viaFile = new SafetensorsCheckpoint(join(folder, "adapter_model.safetensors"));
  const loaded = viaFile.get("lora.A", { dtype: "float16" });
  assert.deepEqual(loaded.toArray(), [4, 5]);
  dispose([t, loaded]);
});

test("get() onto the test device: every dtype, and a tensor larger than several staging chunks, arrive byte for byte", () => {
  const path = join(scratchFolder(), "device.safetensors");
  const original = everyDType();
  // 80 MB: CUDA reads go through 32 MiB pinned chunks, so this one takes three, the last one partial
  original.large = arange(0, 20_000_001, 1, { dtype: "float32" });
  writeSafetensors(path, original);
  const file = new SafetensorsFile(path);
  for (const [name, t] of Object.entries(original)) {
    const back = file.get(name, { device: DEVICE });
    assert.equal(back.device.split(":")[0], DEVICE.split(":")[0], name);
    assert.equal(back.dtype, t.dtype, name);
    assert.deepEqual(back.shape, t.shape, name);
    assert.ok(rawBytes(back.to("cpu")).equals(rawBytes(t)), `bytes of ${name}`);
    back.dispose();
  }
  // a dtype change happens after the read, on the device
  const half = file.get("large", { device: DEVICE, dtype: "bfloat16" });
  assert.equal(half.dtype, "bfloat16");
  assert.equal(half.to("cpu").float().sub(original.large.to("bfloat16").float()).abs().max().item(), 0);
  half.dispose();
  dispose(Object.values(original));
});
