// `vlmkit predict` inputs: a still image of any format is one prediction (a GIF of the same pixels as a PNG gets
// the same answer), a folder of images one per image naming its file, a video on an image run and a still image
// on a video run are errors that say what the run takes, and the run folder records what it was trained on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePng } from "../../src/data/image.js";
import { loadPredictInputs } from "../../src/data/media.js";
import { writeTinyLlavaFolder, vocabularyOf } from "../../src/models/llava/tiny_folder.js";
import { writeSyntheticDataset, SYNTHETIC_QUESTION, syntheticImageLabels } from "../../src/data/synthetic.js";
import { predictRun } from "../../src/runs/use.js";
import { trainRun } from "../../src/runs/train.js";
import { encodeBmp, encodeGif, encodeWebp, paletteImage } from "../data/still_fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-predict-inputs-"));
const words = vocabularyOf([SYNTHETIC_QUESTION, ...syntheticImageLabels().map((l) => `a ${l}`)]);
const modelConfig = writeTinyLlavaFolder(join(dir, "tiny"), { words, visionHidden: 32, textHidden: 32, heads: 2 });
const files = writeSyntheticDataset(join(dir, "data"), { trainImages: 9, valImages: 3, trainClips: 0, seed: 4 });

// a red circle as PNG and GIF (same pixels), a folder of three images in three formats, a video, a damaged WebP
const redCircle = paletteImage(0);
const inputs = join(dir, "inputs");
mkdirSync(join(inputs, "folder"), { recursive: true });
writeFileSync(join(inputs, "red_circle.png"), encodePng(redCircle));
writeFileSync(join(inputs, "red_circle.gif"), encodeGif(redCircle));
writeFileSync(join(inputs, "folder", "b_square.bmp"), encodeBmp(paletteImage(1)));
writeFileSync(join(inputs, "folder", "a_circle.gif"), encodeGif(redCircle));
writeFileSync(join(inputs, "folder", "c_triangle.png"), encodePng(paletteImage(2)));
writeFileSync(join(inputs, "folder", "notes.txt"), "not an image");
// the first bytes of a Matroska file: a video by its signature, whatever ffmpeg would make of the rest
writeFileSync(join(inputs, "clip.mkv"), Uint8Array.from([0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01, 0x42, 0xf7, 0x81, 0x01, 0x42, 0xf2, 0x81]));
const at = (name: string) => join(inputs, name);

const runDir = join(dir, "runs", "head");
const trained = trainRun({
  task: "classification", output_dir: runDir, model: { config: modelConfig, device: "cpu" },
  data: { train: files.trainJsonl, val: files.valJsonl, labels: files.labels, prompt: SYNTHETIC_QUESTION },
  head: { hidden_size: 0, cache_dir: null }, epochs: 1, batch_size: 4, seed: 0, progress: false,
}, () => {});

test("the run folder records that the run was trained on images", async () => {
  await trained;
  assert.deepEqual(JSON.parse(readFileSync(join(runDir, "media.json"), "utf8")), { images: 12, videos: 0 });
});

test("predict on an image run: a GIF of a red circle gets the PNG's prediction, one prediction for the file", async () => {
  await trained;
  const fromPng = await predictRun(runDir, [at("red_circle.png")], { topK: 3 });
  const fromGif = await predictRun(runDir, [at("red_circle.gif")], { topK: 3 });
  assert.equal(fromGif.length, 1);
  assert.equal(fromGif[0].input, at("red_circle.gif"));
  assert.equal(fromGif[0].predictions!.length, 3);
  assert.deepEqual(fromGif[0].predictions, fromPng[0].predictions);
});

test("predict on a folder of three images: three predictions in name order, each naming its file", async () => {
  await trained;
  const predictions = await predictRun(runDir, [join(inputs, "folder")], { topK: 2 });
  assert.deepEqual(predictions.map((p) => p.input), ["a_circle.gif", "b_square.bmp", "c_triangle.png"].map((name) => join(inputs, "folder", name)));
  assert.ok(predictions.every((p) => p.predictions!.length === 2));
  // the folder's GIF is the red circle: its prediction is the file's own (up to the rounding of a batch of 3)
  const [single] = await predictRun(runDir, [at("red_circle.png")], { topK: 2 });
  assert.deepEqual(predictions[0].predictions!.map((p) => p.label), single.predictions!.map((p) => p.label));
  predictions[0].predictions!.forEach((p, i) => assert.ok(Math.abs(p.probability - single.predictions![i].probability) < 1e-5));
});

test("predict on an image run: a video file and a damaged WebP are errors naming the file", async () => {
  await trained;
  await assert.rejects(predictRun(runDir, [at("clip.mkv")]), new RegExp(`${at("clip.mkv")}: a video, but this run was trained on images; give image files`));
  const bad = at("broken.webp");
  writeFileSync(bad, (await encodeWebp(redCircle, { lossless: true })).subarray(0, 48));
  await assert.rejects(predictRun(runDir, [bad]), new RegExp(`${bad}: invalid or damaged WEBP file`));
  writeFileSync(at("garbage.webp"), "GIF? no, just text");
  await assert.rejects(predictRun(runDir, [at("garbage.webp")]), new RegExp(`${at("garbage.webp")}: not an image file`));
});

test("a run folder from before media.json: the training records say images, so a folder is still one prediction per image", async () => {
  await trained;
  const old = join(dir, "runs", "old");
  cpSync(runDir, old, { recursive: true });
  rmSync(join(old, "media.json"));
  const predictions = await predictRun(old, [join(inputs, "folder")]);
  assert.equal(predictions.length, 3);
});

test("on a video run a folder of frames is one video, and a still image is an error saying what the run takes", () => {
  const frames = join(dir, "frames");
  mkdirSync(frames, { recursive: true });
  for (let i = 0; i < 5; i++) writeFileSync(join(frames, `frame_${i}.png`), encodePng(paletteImage(i)));
  const video = { images: 0, videos: 10 };
  const [clip] = loadPredictInputs(frames, 4, video);
  assert.equal(clip.input, frames);
  assert.equal(clip.images.length, 4);
  assert.throws(() => loadPredictInputs(join(frames, "frame_0.png"), 4, video), new RegExp(`frame_0\\.png: a still image, but this run was trained on videos \\(4 frames each\\); give a video file or a folder of its frames`));
  // the same folder on an image run: one input per image
  assert.deepEqual(loadPredictInputs(frames, 4, { images: 3, videos: 0 }).map((i) => i.images.length), [1, 1, 1, 1, 1]);
});
