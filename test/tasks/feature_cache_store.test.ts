// The on-disk feature cache without a model: canonical JSON, content hashes (remembered by stat, so an unchanged
// file is not reread but a changed one always is), sample ids by content (images and video frame folders), shards
// that round-trip bit for bit, and truncated or corrupted shards reported and dropped, never thrown.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { tensor, type Tensor } from "../../src/torch/index.js";
import { FeatureCache, FileHasher, canonicalJson } from "../../src/tasks/feature_cache.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-fcache-"));

test("canonical JSON: key order does not matter, values do", () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: "s" } }), '{"a":{"c":"s","d":[1,{"x":1,"y":2}]},"b":1}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  assert.notEqual(canonicalJson({ a: 1 }), canonicalJson({ a: "1" }));
  assert.equal(canonicalJson({ a: undefined, b: null }), '{"b":null}');
});

test("file hashes are the sha256 of the contents, remembered by stat and redone when the file changes", () => {
  const file = join(dir, "a.bin");
  writeFileSync(file, "hello");
  const memo = join(dir, "memo", "hashes.json");
  const hasher = new FileHasher(memo);
  const expected = createHash("sha256").update("hello").digest("hex");
  assert.equal(hasher.hash(file), expected);
  hasher.flush();
  const stored = JSON.parse(readFileSync(memo, "utf8"));
  assert.equal(stored[file].sha256, expected);
  // a remembered hash is used while the stat matches (a planted wrong hash shows it was not recomputed)
  stored[file].sha256 = "planted";
  writeFileSync(memo, JSON.stringify(stored));
  assert.equal(new FileHasher(memo).hash(file), "planted");
  // any write changes the stat (ctime at least), so the hash is recomputed even with the old mtime put back
  writeFileSync(file, "jello");
  utimesSync(file, new Date(0), new Date(0));
  assert.equal(new FileHasher(memo).hash(file), createHash("sha256").update("jello").digest("hex"));
  assert.throws(() => hasher.hash(join(dir, "missing.png")), /missing\.png: cannot read it to identify cached features/);
});

function folderWithFrames(name: string, frames: string[]): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  frames.forEach((text, i) => writeFileSync(join(folder, `frame_${i}.png`), text));
  return folder;
}

test("sample ids: by content (a copy elsewhere has the same id), media order, frames and frame count", () => {
  const cache = (numFrames = 8) => new FeatureCache(join(dir, "ids"), { model: "m" }, new FileHasher(), { numFrames });
  writeFileSync(join(dir, "x.png"), "x-bytes");
  writeFileSync(join(dir, "y.png"), "y-bytes");
  copyFileSync(join(dir, "x.png"), join(dir, "x-copy.png"));
  const c = cache();
  const x = c.sampleId([join(dir, "x.png")]);
  assert.equal(c.sampleId([join(dir, "x-copy.png")]), x);
  assert.notEqual(c.sampleId([join(dir, "y.png")]), x);
  assert.notEqual(c.sampleId([join(dir, "x.png"), join(dir, "y.png")]), c.sampleId([join(dir, "y.png"), join(dir, "x.png")]));
  const clip = folderWithFrames("clip", ["f0", "f1", "f2"]);
  const same = folderWithFrames("clip-copy", ["f0", "f1", "f2"]);
  const other = folderWithFrames("clip-other", ["f0", "f1", "changed"]);
  assert.equal(c.sampleId([clip]), c.sampleId([same]));
  assert.notEqual(c.sampleId([clip]), c.sampleId([other]));
  assert.notEqual(cache(4).sampleId([clip]), c.sampleId([clip]));
  // a video file is identified by its bytes and the frame count too; a still image by its bytes alone
  writeFileSync(join(dir, "clip.mp4"), "video-bytes");
  assert.notEqual(cache(4).sampleId([join(dir, "clip.mp4")]), c.sampleId([join(dir, "clip.mp4")]));
  assert.equal(cache(4).sampleId([join(dir, "x.png")]), x);
  // the identity names the folder
  assert.notEqual(new FeatureCache(join(dir, "ids"), { model: "other" }, new FileHasher()).folder, c.folder);
  assert.equal(new FeatureCache(join(dir, "ids"), { model: "m" }, new FileHasher()).folder, c.folder);
});

function row(values: number[]): Tensor {
  return tensor(values, { dtype: "float32" });
}

function shards(cache: FeatureCache): string[] {
  return existsSync(cache.folder) ? readdirSync(cache.folder).filter((n) => n.endsWith(".safetensors")).map((n) => join(cache.folder, n)) : [];
}

test("shards round-trip bit for bit; missing ids are absent; a truncated or corrupted shard is reported, deleted and not loaded", () => {
  const root = join(dir, "store");
  const warnings: string[] = [];
  const open = () => new FeatureCache(root, { model: "m" }, new FileHasher(), { log: (line) => warnings.push(line) });
  const values = { a: [0.1, -2.5, 1e-30], b: [Math.PI, 0, -0], c: [7, 8, 9] };
  const first = open();
  first.save(new Map([["a", row(values.a)], ["b", row(values.b)]]));
  const [abShard] = shards(first);
  first.save(new Map([["c", row(values.c)], ["a", row([99, 99, 99])]])); // "a" is on disk already: kept as it was
  assert.equal(shards(first).length, 2);
  assert.ok(existsSync(join(first.folder, "identity.json")));
  // nothing temporary is left behind
  assert.deepEqual(readdirSync(first.folder).filter((n) => n.includes(".tmp-")), []);

  const loaded = open().load(["a", "b", "c", "nope"]);
  assert.deepEqual([...loaded.keys()].sort(), ["a", "b", "c"]);
  for (const [id, want] of Object.entries(values)) {
    assert.deepEqual(Buffer.from((loaded.get(id)!.data() as Float32Array).buffer), Buffer.from(new Float32Array(want).buffer), id);
  }
  for (const t of loaded.values()) t.dispose();

  // truncated: the shard holding c is cut in half
  const cShard = shards(first).find((file) => file !== abShard)!;
  truncateSync(cShard, Math.floor(readFileSync(cShard).length / 2));
  const afterCut = open();
  const partial = afterCut.load(["a", "b", "c"]);
  assert.deepEqual([...partial.keys()].sort(), ["a", "b"]);
  for (const t of partial.values()) t.dispose();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /warning: feature cache .*features-[0-9a-f]+\.safetensors is unreadable \(.*truncated.*\); deleting it, its features will be computed again/);
  assert.ok(!existsSync(cShard));

  // corrupted: same length, one feature byte flipped, caught by the checksum
  assert.deepEqual(shards(afterCut), [abShard]);
  const bytes = readFileSync(abShard);
  bytes[bytes.length - 1] ^= 0x40;
  writeFileSync(abShard, bytes);
  const flipped = open().load(["a", "b"]);
  assert.equal(flipped.size, 0);
  assert.match(warnings[1], /do not match their checksum/);
  assert.deepEqual(shards(afterCut), []);
  // and the store works again afterwards
  const again = open();
  again.save(new Map([["a", row(values.a)]]));
  const back = open().load(["a"]);
  assert.deepEqual(Array.from(back.get("a")!.data() as Float32Array), Array.from(new Float32Array(values.a)));
  back.get("a")!.dispose();
});

test("a temporary file of a dead writer is removed; garbage files named like shards are reported, not thrown", () => {
  const root = join(dir, "temps");
  const warnings: string[] = [];
  const cache = new FeatureCache(root, { model: "t" }, new FileHasher(), { log: (line) => warnings.push(line) });
  mkdirSync(cache.folder, { recursive: true });
  // pid 2^22 + 1 is above Linux's pid_max limit, so no process has it
  const stale = join(cache.folder, `features-${"0".repeat(64)}.safetensors.tmp-4194305`);
  const live = join(cache.folder, `features-${"1".repeat(64)}.safetensors.tmp-${process.pid}`);
  writeFileSync(stale, "half");
  writeFileSync(live, "being written");
  writeFileSync(join(cache.folder, `features-${"2".repeat(64)}.safetensors`), "not safetensors at all");
  assert.equal(cache.load(["x"]).size, 0);
  assert.ok(!existsSync(stale));
  assert.ok(existsSync(live));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /is unreadable/);
});
