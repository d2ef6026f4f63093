// Video files where the commands take videos: `predict`/`generate` inputs, {video} classification rows and video
// conversations, all through ffmpeg; a file and a folder of the same frames give the same frames and answers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePng } from "../../src/data/image.js";
import { evenFrameIndices } from "../../src/data/frame_folder.js";
import { generateText } from "../../src/runs/use.js";
import { readLabeledRecords } from "../../src/data/records.js";
import { readConversationRecords } from "../../src/data/conversations.js";
import { MediaCache, loadInput } from "../../src/data/media.js";
import { vocabularyOf, writeTinyLlavaFolder } from "../../src/models/llava/tiny_folder.js";
import { FFV1, encodeVideo, knownFrames, noFfmpeg, whichFrame } from "../data/video_fixtures.js";

const skip = noFfmpeg;

/** A folder with clips/walk.mkv (20 known frames) and the same frames as clips/walk/frame_N.png. */
function clips() {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-video-cli-"));
  const frames = knownFrames(20, 16, 12);
  mkdirSync(join(dir, "clips", "walk"), { recursive: true });
  frames.forEach((frame, i) => writeFileSync(join(dir, "clips", "walk", `frame_${i}.png`), encodePng(frame)));
  const file = encodeVideo(join(dir, "clips"), "walk.mkv", frames, FFV1);
  return { dir, frames, file, folder: join(dir, "clips", "walk") };
}

test("command-line inputs: a video file gives its evenly sampled frames, an image file itself", { skip }, () => {
  const { dir, frames, file, folder } = clips();
  assert.deepEqual(loadInput(file, 4).map((image) => whichFrame(image, frames)), evenFrameIndices(20, 4));
  assert.deepEqual(loadInput(folder, 4).map((image) => whichFrame(image, frames)), evenFrameIndices(20, 4));
  assert.deepEqual(loadInput(join(folder, "frame_7.png"), 4).map((image) => whichFrame(image, frames)), [7]);
  const notVideo = join(dir, "notes.txt");
  writeFileSync(notVideo, "hello");
  assert.throws(() => loadInput(notVideo, 4), new RegExp(`${notVideo}: not a video ffmpeg can read`));
});

test("{video} rows naming a video file load through readLabeledRecords and MediaCache", { skip }, () => {
  const { dir, frames } = clips();
  const jsonl = join(dir, "train.jsonl");
  writeFileSync(jsonl, '{"video": "clips/walk.mkv", "label": "walk"}\n{"video": "clips/walk", "label": "still"}\n');
  const set = readLabeledRecords(jsonl, { labels: ["still", "walk"] });
  assert.deepEqual(set.records.map((r) => [r.video, r.labelIndex]), [[join(dir, "clips", "walk.mkv"), 1], [join(dir, "clips", "walk"), 0]]);
  const media = new MediaCache(6);
  const fromFile = media.get(set.records[0]);
  assert.deepEqual(fromFile.map((image) => whichFrame(image, frames)), evenFrameIndices(20, 6));
  assert.deepEqual(media.get(set.records[1]).map((image) => whichFrame(image, frames)), evenFrameIndices(20, 6));
  assert.equal(media.get(set.records[0]), fromFile, "decoded once, then cached");
});

test("a video conversation naming a video file gets its frames", { skip }, () => {
  const { dir, frames } = clips();
  const jsonl = join(dir, "sft.jsonl");
  writeFileSync(jsonl, JSON.stringify({ video: "clips/walk.mkv", conversations: [{ from: "human", value: "<video>\nWhich way?" }, { from: "gpt", value: "left" }] }) + "\n");
  const { records } = readConversationRecords(jsonl);
  assert.equal(records[0].video, join(dir, "clips", "walk.mkv"));
  assert.deepEqual(new MediaCache(3).get(records[0]).map((image) => whichFrame(image, frames)), evenFrameIndices(20, 3));
});

test("generate: a video file and a folder of its frames get the same answer from the same model", { skip }, async () => {
  const { dir, file, folder } = clips();
  const config = writeTinyLlavaFolder(join(dir, "tiny"), { words: vocabularyOf(["which way", "left right"]), visionHidden: 32, textHidden: 32, heads: 2 });
  const ask = (input: string) => generateText({ modelConfig: config }, [input], "which way", { numFrames: 4, maxNewTokens: 6, seed: 3 });
  const fromFile = await ask(file);
  assert.equal(typeof fromFile, "string");
  assert.equal(await ask(folder), fromFile);
});
