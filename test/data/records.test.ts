// Datasets: JSONL rows and image folders, each bad-record kind named by file:line, skip mode, label maps, splits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePng } from "../../src/data/image.js";
import { readJsonlRecords, readImageFolder, readLabelMap, splitRecords } from "../../src/data/records.js";

function dataset(): string {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-records-"));
  const png = encodePng({ width: 2, height: 2, data: new Uint8Array(12).fill(200) });
  for (const name of ["a.png", "b.png"]) writeFileSync(join(dir, name), png);
  writeFileSync(join(dir, "broken.png"), Buffer.from("not a png at all"));
  writeFileSync(join(dir, "clip.mp4"), Buffer.from("video bytes"));
  return dir;
}

test("JSONL rows: image, images and video; labels by name or index; relative paths resolved", () => {
  const dir = dataset();
  const file = join(dir, "train.jsonl");
  writeFileSync(file, ['{"image": "a.png", "label": "dog"}', "", '{"images": ["a.png", "b.png"], "label": "cat"}', '{"video": "clip.mp4", "label": 1}'].join("\n"));
  const set = readJsonlRecords(file, { labels: ["cat", "dog"] });
  assert.deepEqual(set.labels, ["cat", "dog"]);
  assert.deepEqual(set.records.map((r) => [r.source, r.label, r.labelIndex]), [[`${file}:1`, "dog", 1], [`${file}:3`, "cat", 0], [`${file}:4`, "dog", 1]]);
  assert.deepEqual(set.records[1].images, [join(dir, "a.png"), join(dir, "b.png")]);
  assert.equal(set.records[2].video, join(dir, "clip.mp4"));
});

test("without a label list, classes are the sorted distinct names", () => {
  const dir = dataset();
  const file = join(dir, "names.jsonl");
  writeFileSync(file, '{"image": "a.png", "label": "zebra"}\n{"image": "b.png", "label": "ant"}\n');
  const set = readJsonlRecords(file);
  assert.deepEqual(set.labels, ["ant", "zebra"]);
  assert.deepEqual(set.records.map((r) => r.labelIndex), [1, 0]);
});

test("each bad record kind is an error naming file:line; skipBad skips and reports them all", () => {
  const dir = dataset();
  const file = join(dir, "bad.jsonl");
  const rows = [
    '{"image": "a.png", "label": "cat"}',
    '{"image": "a.png", "label": "cat"',
    '{"image": "missing.png", "label": "cat"}',
    '{"image": "broken.png", "label": "cat"}',
    '{"image": "a.png", "label": "zebra"}',
    '{"image": "a.png", "label": 7}',
    '{"label": "cat"}',
    '{"image": "a.png"}',
    '{"video": "gone.mp4", "label": "dog"}',
  ];
  writeFileSync(file, rows.join("\n"));
  const expected = [
    [2, /bad JSON/],
    [3, /image file not found: .*missing\.png/],
    [4, /cannot decode image/],
    [5, /unknown label 'zebra' \(known: cat, dog\)/],
    [6, /label index 7 >= number of classes \(2\)/],
    [7, /exactly one of "image", "images", "video" \(found none\)/],
    [8, /missing "label"/],
    [9, /video file not found/],
  ] as const;
  for (const [line, message] of expected) {
    const only = join(dir, `only${line}.jsonl`);
    writeFileSync(only, rows[0] + "\n".repeat(line - 1) + rows[line - 1]);
    assert.throws(() => readJsonlRecords(only, { labels: ["cat", "dog"], validate: true }), (e: Error) => e.message.startsWith(`${only}:${line}: `) && message.test(e.message), `line ${line}`);
  }
  const set = readJsonlRecords(file, { labels: ["cat", "dog"], validate: true, skipBad: true });
  assert.equal(set.records.length, 1);
  assert.deepEqual(set.skipped.map((s) => s.source), expected.map(([line]) => `${file}:${line}`));
  expected.forEach(([, message], i) => assert.match(set.skipped[i].reason, message));
});

test("image folders: one subfolder per class, sorted; bad images named by path", () => {
  const dir = dataset();
  const root = join(dir, "folder");
  const png = encodePng({ width: 1, height: 1, data: new Uint8Array([1, 2, 3]) });
  for (const [cls, files] of [["dog", ["1.png", "2.png"]], ["cat", ["1.png"]]] as const) {
    mkdirSync(join(root, cls), { recursive: true });
    for (const f of files) writeFileSync(join(root, cls, f), png);
  }
  writeFileSync(join(root, "cat", "notes.txt"), "ignored: not an image");
  const set = readImageFolder(root);
  assert.deepEqual(set.labels, ["cat", "dog"]);
  assert.deepEqual(set.records.map((r) => [r.label, r.labelIndex]), [["cat", 0], ["dog", 1], ["dog", 1]]);
  writeFileSync(join(root, "dog", "3.png"), "garbage");
  assert.throws(() => readImageFolder(root, { validate: true }), new RegExp(`${join(root, "dog", "3.png")}: cannot decode image`));
  assert.equal(readImageFolder(root, { validate: true, skipBad: true }).skipped.length, 1);
  assert.throws(() => readImageFolder(root, { labels: ["cat"] }), /unknown label 'dog'/);
});

test("label maps and seeded splits", () => {
  const dir = dataset();
  writeFileSync(join(dir, "labels.json"), '["cat", "dog"]');
  assert.deepEqual(readLabelMap(join(dir, "labels.json")), ["cat", "dog"]);
  writeFileSync(join(dir, "dup.json"), '["cat", "cat"]');
  assert.throws(() => readLabelMap(join(dir, "dup.json")), /distinct class names/);
  const items = Array.from({ length: 100 }, (_, i) => i);
  const a = splitRecords(items, 0.2, 7);
  const b = splitRecords(items, 0.2, 7);
  assert.deepEqual(a, b, "the same seed gives the same split");
  assert.equal(a.val.length, 20);
  assert.deepEqual([...a.train, ...a.val].sort((x, y) => x - y), items, "nothing lost or duplicated");
  assert.notDeepEqual(splitRecords(items, 0.2, 8).val, a.val, "another seed gives another split");
});

test("a UTF-8 byte order mark is stripped; an empty file is an error naming it", () => {
  const dir = dataset();
  const bom = join(dir, "bom.jsonl");
  writeFileSync(bom, '\uFEFF{"image": "a.png", "label": "cat"}\n{"image": "b.png", "label": "dog"}\n');
  const set = readJsonlRecords(bom, { labels: ["cat", "dog"] });
  assert.deepEqual(set.records.map((r) => r.label), ["cat", "dog"]);
  for (const text of ["", "\n  \n", "\uFEFF"]) {
    const empty = join(dir, "empty.jsonl");
    writeFileSync(empty, text);
    assert.throws(() => readJsonlRecords(empty), new RegExp(`^Error: ${empty.replace(/[.\\/]/g, "\\$&")}: no records in the file`), JSON.stringify(text));
  }
});

test("a labeled dataset can be one JSON array of rows, each named file[index] in errors", () => {
  const dir = dataset();
  const path = join(dir, "train.json");
  writeFileSync(path, JSON.stringify([{ image: "a.png", label: "cat" }, { image: "b.png", label: "dog" }]));
  const set = readJsonlRecords(path);
  assert.deepEqual(set.records.map((r) => [r.source, r.label]), [[`${path}[0]`, "cat"], [`${path}[1]`, "dog"]]);
  writeFileSync(path, JSON.stringify([{ image: "a.png", label: "cat" }, { image: "a.png", label: "bird" }]));
  assert.throws(() => readJsonlRecords(path, { labels: ["cat", "dog"] }), /train\.json\[1\]: unknown label 'bird'/);
});
