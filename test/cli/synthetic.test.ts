// The synthetic dataset: the same seed writes the same bytes, classes are balanced, and what is drawn is what the
// label says (colour from the pixels, shape from the covered area, motion from the centroid of each frame).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import {
  writeSyntheticDataset, makeSyntheticImages, makeSyntheticClips, syntheticImageLabels, DIRECTIONS, SYNTHETIC_QUESTION,
} from "../../src/data/synthetic.js";
import { loadImage, type RgbImage } from "../../src/data/image.js";
import { readJsonlRecords } from "../../src/data/records.js";
import { evenFrameIndices, loadFrameFolder } from "../../src/data/frame_folder.js";

function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.set(relative(dir, path), readFileSync(path));
    }
  };
  walk(dir);
  return out;
}

const small = { trainImages: 18, valImages: 9, trainClips: 8, valClips: 4 };

test("the same seed writes the same files, byte for byte; another seed other images", () => {
  const a = filesUnder(writeSyntheticDataset(mkdtempSync(join(tmpdir(), "vlmkit-syn-")), { ...small, seed: 3 }).dir);
  const b = filesUnder(writeSyntheticDataset(mkdtempSync(join(tmpdir(), "vlmkit-syn-")), { ...small, seed: 3 }).dir);
  const c = filesUnder(writeSyntheticDataset(mkdtempSync(join(tmpdir(), "vlmkit-syn-")), { ...small, seed: 4 }).dir);
  assert.deepEqual([...a.keys()], [...b.keys()]);
  for (const [name, bytes] of a) assert.ok(bytes.equals(b.get(name)!), name);
  assert.equal(a.size, 18 + 9 + 12 * 8 + 8);
  assert.ok(!a.get("images/train_0000.png")!.equals(c.get("images/train_0000.png")!));
  assert.ok(!a.get("video/clips/train_0000/frame_00.png")!.equals(c.get("video/clips/train_0000/frame_00.png")!));
});

test("records, label maps and conversations read back through the record readers", () => {
  const files = writeSyntheticDataset(mkdtempSync(join(tmpdir(), "vlmkit-syn-")), { ...small, seed: 0 });
  const labels = JSON.parse(readFileSync(files.labels, "utf8"));
  assert.deepEqual(labels, syntheticImageLabels());
  assert.equal(labels.length, 9);
  const train = readJsonlRecords(files.trainJsonl, { labels, validate: true });
  assert.equal(train.records.length, 18);
  for (const label of labels) assert.equal(train.records.filter((r) => r.label === label).length, 2, label);
  const video = readJsonlRecords(files.videoTrainJsonl!, { labels: JSON.parse(readFileSync(files.videoLabels!, "utf8")) });
  assert.deepEqual(video.labels, [...DIRECTIONS]);
  assert.equal(video.records.filter((r) => r.label === "left").length, 2);
  assert.equal(loadFrameFolder(video.records[0].video!, 8).length, 8);
  const conversations = readFileSync(files.sftTrainJsonl, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(conversations[4], {
    image: "images/train_0004.png",
    conversations: [{ from: "human", value: `<image>\n${SYNTHETIC_QUESTION}` }, { from: "gpt", value: `a ${train.records[4].label}` }],
  });
});

/** Pixels much brighter than the background (at most ~90 per channel): the object. */
function objectPixels(image: RgbImage): { x: number; y: number; rgb: number[] }[] {
  const out: { x: number; y: number; rgb: number[] }[] = [];
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const at = (y * image.width + x) * 3;
      const rgb = [image.data[at], image.data[at + 1], image.data[at + 2]];
      if (Math.max(...rgb) > 140) out.push({ x, y, rgb });
    }
  }
  return out;
}

test("each image shows its label: the colour in the pixels, the shape in the covered area", () => {
  const samples = makeSyntheticImages(90, { size: 32, seed: 11 });
  // covered area / radius^2: circle pi, square (2 * 0.95)^2, triangle 0.5 * 2 * 1.8 (apex -r, base 0.8 r)
  const areaRatio = { circle: Math.PI, square: 3.61, triangle: 1.8 };
  for (const { image, label, object } of samples) {
    const pixels = objectPixels(image);
    const channelSums = [0, 1, 2].map((c) => pixels.reduce((s, p) => s + p.rgb[c], 0));
    const colour = ["red", "green", "blue"][channelSums.indexOf(Math.max(...channelSums))];
    assert.equal(`${colour} ${object.shape}`, label);
    const ratio = pixels.length / object.radius ** 2;
    assert.ok(Math.abs(ratio - areaRatio[object.shape]) < 0.45, `${label}: area ratio ${ratio.toFixed(2)}, expected about ${areaRatio[object.shape]}`);
    // nothing drawn outside the image: the object sits wholly inside
    assert.ok(object.cx - object.radius >= 0 && object.cx + object.radius <= 32 && object.cy - object.radius >= 0 && object.cy + object.radius <= 32);
  }
});

test("each clip moves its square in the labelled direction; the middle of the clip is where it is whatever the class", () => {
  const clips = makeSyntheticClips(400, { size: 32, frames: 8, seed: 5 });
  const middles: Record<string, number[]> = { left: [], right: [], up: [], down: [] };
  for (const clip of clips) {
    const centroids = clip.frames.map((frame) => {
      const pixels = objectPixels(frame);
      return [pixels.reduce((s, p) => s + p.x, 0) / pixels.length, pixels.reduce((s, p) => s + p.y, 0) / pixels.length];
    });
    const [dx, dy] = [centroids[7][0] - centroids[0][0], centroids[7][1] - centroids[0][1]];
    const direction = Math.abs(dx) > Math.abs(dy) ? (dx > 0 ? "right" : "left") : dy > 0 ? "down" : "up";
    assert.equal(direction, clip.label);
    assert.ok(Math.max(Math.abs(dx), Math.abs(dy)) > 8, `the square travels ${Math.max(Math.abs(dx), Math.abs(dy)).toFixed(1)} px`);
    for (let f = 1; f < 8; f++) {
      const step = Math.hypot(centroids[f][0] - centroids[f - 1][0], centroids[f][1] - centroids[f - 1][1]);
      assert.ok(step > 0.5, `moves every frame (${step.toFixed(2)} px at frame ${f})`);
    }
    const axis = clip.label === "left" || clip.label === "right" ? 0 : 1;
    middles[clip.label].push((centroids[3][axis] + centroids[4][axis]) / 2);
  }
  // opposite directions: the same spread of middle positions (mean and quartiles within a pixel or two)
  const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.floor(q * (values.length - 1))];
  for (const [a, b] of [["left", "right"], ["up", "down"]]) {
    for (const q of [0.25, 0.5, 0.75]) {
      assert.ok(Math.abs(quantile(middles[a], q) - quantile(middles[b], q)) < 2, `${a}/${b} middle positions differ at quantile ${q}`);
    }
  }
});

test("frames are sampled evenly, first and last included", () => {
  assert.deepEqual(evenFrameIndices(8, 8), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(evenFrameIndices(16, 4), [0, 5, 10, 15]);
  assert.deepEqual(evenFrameIndices(3, 5), [0, 1, 1, 2, 2]);
  assert.deepEqual(evenFrameIndices(9, 1), [4]);
  assert.throws(() => loadFrameFolder("/nonexistent-folder"), /not a folder of video frames/);
});

test("the PNG files decode to the generated pixels", () => {
  const files = writeSyntheticDataset(mkdtempSync(join(tmpdir(), "vlmkit-syn-")), { trainImages: 3, valImages: 1, trainClips: 0, seed: 2 });
  const expected = makeSyntheticImages(3, { size: 32, seed: 2 * 2 + 1 });
  for (let i = 0; i < 3; i++) {
    const decoded = loadImage(join(files.dir, `images/train_000${i}.png`));
    assert.deepEqual(Buffer.from(decoded.data), Buffer.from(expected[i].image.data));
  }
});
