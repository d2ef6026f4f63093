import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  readSafetensors, writeSafetensors, writeShardedSafetensors, SafetensorsFile, SafetensorsCheckpoint, tensor, randn, dispose, liveTensorCount,
  type Tensor,
} from "../../src/index.js";
import { alignPadding, assemble, bytesOf, scratchFolder } from "./safetensors_helpers.js";

/** Asserts that fn throws an Error whose message contains every one of the given pieces. */
function throwsNaming(fn: () => unknown, ...pieces: (string | RegExp)[]): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Error, "throws an Error");
    for (const piece of pieces) {
      if (typeof piece === "string") assert.ok(error.message.includes(piece), `message names ${piece}: ${error.message}`);
      else assert.match(error.message, piece);
    }
    return true;
  });
}

function writeHandMade(name: string, header: string, buffers: Uint8Array[], padding = 0): string {
  const path = join(scratchFolder(), name);
  writeFileSync(path, assemble(header, buffers, padding));
  return path;
}

const twoFloats = bytesOf(new Float32Array([1, 2]));

test("truncated data names the file and the tensor that runs past its end", () => {
  const path = join(scratchFolder(), "cut.safetensors");
  const a = tensor([1, 2]);
  const b = randn([50]);
  writeSafetensors(path, { a, b });
  truncateSync(path, readFileSync(path).length - 3);
  throwsNaming(() => new SafetensorsFile(path), path, "'b'", /truncated/);
  throwsNaming(() => readSafetensors(path), path, "'b'");
  dispose([a, b]);
});

test("a header length beyond the file, and files too short for one, name the file", () => {
  const path = join(scratchFolder(), "long.safetensors");
  const bytes = assemble('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', [twoFloats]);
  bytes.writeBigUInt64LE(BigInt(bytes.length), 0);
  writeFileSync(path, bytes);
  throwsNaming(() => new SafetensorsFile(path), path, /header length \d+ runs past the end/);
  bytes.writeBigUInt64LE(2n ** 63n, 0); // a length no JS number can hold
  writeFileSync(path, bytes);
  throwsNaming(() => new SafetensorsFile(path), path, /header length/);
  writeFileSync(path, Buffer.from([1, 2, 3]));
  throwsNaming(() => new SafetensorsFile(path), path, /3 bytes/);
  throwsNaming(() => new SafetensorsFile(path + ".absent"), path + ".absent", /cannot open/);
});

test("bad JSON and a header that is not an object name the file", () => {
  const bad = writeHandMade("bad.safetensors", '{"a":{"dtype":"F32",', [twoFloats]);
  throwsNaming(() => new SafetensorsFile(bad), bad, /not valid JSON/);
  const array = writeHandMade("array.safetensors", "[1,2]", []);
  throwsNaming(() => new SafetensorsFile(array), array, /JSON object/);
  const metadata = writeHandMade("meta.safetensors", '{"__metadata__":{"step":3}}', []);
  throwsNaming(() => new SafetensorsFile(metadata), metadata, "step", /must be a string/);
});

test("overlapping tensors name the file and both tensors", () => {
  const path = writeHandMade(
    "overlap.safetensors",
    '{"first":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"second":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
    [bytesOf(new Float32Array([1, 2, 3]))],
  );
  throwsNaming(() => new SafetensorsFile(path), path, "'first'", "'second'", /overlaps/);
});

test("holes between, before and after tensors name the file and the tensors around them", () => {
  const between = writeHandMade(
    "hole.safetensors",
    '{"first":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"second":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}',
    [bytesOf(new Float32Array([1, 0, 2]))],
  );
  throwsNaming(() => new SafetensorsFile(between), between, "'first'", "'second'", /4 bytes/, /belong to no tensor/);
  const before = writeHandMade("before.safetensors", '{"only":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', [twoFloats]);
  throwsNaming(() => new SafetensorsFile(before), before, "'only'", /start of the data/);
  const after = writeHandMade("after.safetensors", '{"only":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', [twoFloats]);
  throwsNaming(() => new SafetensorsFile(after), after, "'only'", /4 bytes after/);
});

test("unknown and unsupported dtypes name the file, the tensor and the dtype", () => {
  const unknown = writeHandMade("unknown.safetensors", '{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}', [twoFloats]);
  throwsNaming(() => new SafetensorsFile(unknown), unknown, "'w'", /unknown dtype 'Q4'/, /BF16/);
  const fp8 = writeHandMade("fp8.safetensors", '{"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}', [twoFloats]);
  throwsNaming(() => new SafetensorsFile(fp8), fp8, "'w'", /F8_E4M3 is not supported/);
});

test("a byte span that does not match shape x element size, or a malformed entry, names the tensor", () => {
  const size = writeHandMade("size.safetensors", '{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', [twoFloats]);
  throwsNaming(() => new SafetensorsFile(size), size, "'w'", /8 bytes/, /12 bytes/);
  const shape = writeHandMade("shape.safetensors", '{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', [twoFloats]);
  throwsNaming(() => new SafetensorsFile(shape), shape, "'w'", /shape/);
  const offsets = writeHandMade("offsets.safetensors", '{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', [twoFloats]);
  throwsNaming(() => new SafetensorsFile(offsets), offsets, "'w'", /data_offsets/);
});

test("a missing key names the file or checkpoint and the key", () => {
  const folder = scratchFolder();
  const t = tensor([1]);
  writeSafetensors(join(folder, "model.safetensors"), { present: t });
  const file = new SafetensorsFile(join(folder, "model.safetensors"));
  throwsNaming(() => file.get("absent"), join(folder, "model.safetensors"), "'absent'", "'present'");
  throwsNaming(() => new SafetensorsCheckpoint(folder).get("absent"), "model.safetensors", "'absent'");

  const sharded = scratchFolder();
  writeShardedSafetensors(sharded, { a: t, b: t }, { maxShardBytes: 4 });
  throwsNaming(() => new SafetensorsCheckpoint(sharded).get("absent"), "model.safetensors.index.json", "'absent'");
  // An index that lists a tensor its shard does not hold.
  const indexPath = join(sharded, "model.safetensors.index.json");
  const index = JSON.parse(readFileSync(indexPath, "utf8"));
  index.weight_map.ghost = "model-00001-of-00002.safetensors";
  writeFileSync(indexPath, JSON.stringify(index));
  throwsNaming(() => new SafetensorsCheckpoint(sharded).get("ghost"), "'ghost'", "model-00001-of-00002.safetensors", /disagree/);
  t.dispose();
});

test("a missing shard names the shard file and a tensor mapped to it", () => {
  const folder = scratchFolder();
  const a = tensor([1, 2]);
  const b = tensor([3, 4]);
  writeShardedSafetensors(folder, { a, b }, { maxShardBytes: 8 });
  unlinkSync(join(folder, "model-00002-of-00002.safetensors"));
  throwsNaming(() => new SafetensorsCheckpoint(folder), join(folder, "model-00002-of-00002.safetensors"), "'b'", /missing/);
  dispose([a, b]);
});

test("folders without weights or with several candidate files say what was looked for", () => {
  const empty = scratchFolder();
  throwsNaming(() => new SafetensorsCheckpoint(empty), empty, "model.safetensors.index.json", "model.safetensors");
  throwsNaming(() => new SafetensorsCheckpoint(join(empty, "nowhere")), join(empty, "nowhere"), /does not exist/);
  const t = tensor([1]);
  writeSafetensors(join(empty, "x.safetensors"), { t });
  writeSafetensors(join(empty, "y.safetensors"), { t });
  throwsNaming(() => new SafetensorsCheckpoint(empty), "x.safetensors", "y.safetensors", /several/);
  writeFileSync(join(empty, "model.safetensors.index.json"), '{"weights": {}}');
  throwsNaming(() => new SafetensorsCheckpoint(empty), "model.safetensors.index.json", /weight_map/);
  t.dispose();
});

test("loadTensors and get() free what they loaded when a later tensor fails", () => {
  const path = join(scratchFolder(), "partial.safetensors");
  const a = tensor([1, 2]);
  const b = randn([64]);
  writeSafetensors(path, { a, b });
  const file = new SafetensorsFile(path);
  truncateSync(path, file.dataStart + 8 + 16);
  const before = liveTensorCount();
  throwsNaming(() => new SafetensorsCheckpoint(path).loadTensors(), path, "'b'", /truncated/);
  assert.equal(liveTensorCount(), before);
  throwsNaming(() => file.get("b"), path, "'b'", /truncated/);
  assert.equal(liveTensorCount(), before);
  dispose([a, b]);
});

test("a failed write leaves no file, no temporary, and an existing file untouched", () => {
  const folder = scratchFolder();
  const path = join(folder, "model.safetensors");
  const good = tensor([1, 2, 3]);

  // A disposed tensor is caught while planning the header, before anything is written.
  const disposed = tensor([4]);
  disposed.dispose();
  throwsNaming(() => writeSafetensors(path, { a: good, z: disposed }), path, "'z'", /disposed/);
  assert.deepEqual(readdirSync(folder), []);

  writeSafetensors(path, { a: good }, { version: "1" });
  const original = readFileSync(path);

  // A tensor whose data cannot be reached fails midway, after the header and earlier tensors hit the disk.
  const unreadable = new Proxy(randn([100]), {
    get(target, property) {
      if (property === "handle") throw new Error("simulated device failure");
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  }) as Tensor;
  throwsNaming(() => writeSafetensors(path, { a: good, z_last: unreadable }), path, "'z_last'", /simulated device failure/, /not changed/);
  assert.ok(readFileSync(path).equals(original), "the existing file is untouched");
  assert.deepEqual(readdirSync(folder), ["model.safetensors"], "no temporary is left behind");

  throwsNaming(() => writeSafetensors(path, { a: good, b: disposed }), "'b'");
  assert.ok(readFileSync(path).equals(original));

  // Sharded: a failing shard leaves the folder as it was.
  const shardFolder = scratchFolder();
  assert.throws(() => writeShardedSafetensors(shardFolder, { a: good, b: good, z: unreadable }, { maxShardBytes: 12 }), /simulated/);
  assert.deepEqual(readdirSync(shardFolder), []);
  assert.ok(!existsSync(join(shardFolder, "model.safetensors.index.json")));
  dispose([good, unreadable]);
});

test("writing rejects the reserved __metadata__ name and non-string metadata", () => {
  const folder = scratchFolder();
  const t = tensor([1]);
  throwsNaming(() => writeSafetensors(join(folder, "a.safetensors"), { __metadata__: t }), "__metadata__", /reserved/);
  throwsNaming(() => writeSafetensors(join(folder, "a.safetensors"), { t }, { step: 3 as unknown as string }), "'step'", /strings/);
  assert.deepEqual(readdirSync(folder), []);
  t.dispose();
});

test("a header naming a tensor twice is refused, naming the file and the key", () => {
  const entry = (offsets: string) => `{"dtype":"F32","shape":[2],"data_offsets":${offsets}}`;
  const header = `{"a":${entry("[0,8]")},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}, "a" :${entry("[0,8]")}}`;
  const path = writeHandMade("dup.safetensors", header, [twoFloats, bytesOf(new Float32Array([3]))], alignPadding(header));
  throwsNaming(() => new SafetensorsFile(path), path, "'a' twice");
  // Equal names inside __metadata__ values or nested objects are not top-level duplicates
  const nested = `{"__metadata__":{"a":"x","b":"a"},"a":${entry("[0,8]")}}`;
  const ok = writeHandMade("nested.safetensors", nested, [twoFloats], alignPadding(nested));
  assert.deepEqual(new SafetensorsFile(ok).keys(), ["a"]);
});

test("a header that is not valid UTF-8 is refused, naming the file", () => {
  const header = `{"a\u00e9":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`;
  const bytes = assemble(header, [twoFloats], alignPadding(header));
  // é is c3 a9 in UTF-8; a lone c3 followed by a quote is not UTF-8 (a lenient decoder makes it U+FFFD)
  const at = bytes.indexOf(Buffer.from([0xc3, 0xa9]));
  bytes[at + 1] = 0x20;
  const path = join(scratchFolder(), "latin1.safetensors");
  writeFileSync(path, bytes);
  throwsNaming(() => new SafetensorsFile(path), path, "not valid UTF-8");
});
