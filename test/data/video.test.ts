// Video files through ffmpeg: the frames sampled are the ones evenFrameIndices names (told apart by their pixels),
// lossless files come back pixel for pixel, rotation and edit lists are honoured, and every failure names the file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePng } from "../../src/data/image.js";
import { evenFrameIndices } from "../../src/data/frame_folder.js";
import { decodeVideoFrames, loadVideo, loadVideoFile, probeVideo, seekVideoFrames } from "../../src/data/video.js";
import { FFV1, H264_RGB_LOSSLESS, encodeVideo, knownFrames, nearestFrame, noFfmpeg, whichFrame } from "./video_fixtures.js";

const skip = noFfmpeg;
const tempDir = () => mkdtempSync(join(tmpdir(), "vlmkit-video-"));

/** A stand-in ffprobe that prints `json` (and `stderr`) and exits with `status`, for what real files rarely show. */
function fakeFfprobe(dir: string, json: object, status = 0, stderr = ""): string {
  const path = join(dir, "ffprobe");
  writeFileSync(path, `#!/bin/sh\necho '${JSON.stringify(json)}'\necho '${stderr}' >&2\nexit ${status}\n`);
  chmodSync(path, 0o755);
  return path;
}

test("a lossless video: the frames at evenFrameIndices, pixel for pixel, at the video's size", { skip }, () => {
  const frames = knownFrames(20, 16, 12);
  const path = encodeVideo(tempDir(), "clip.mkv", frames, FFV1);
  assert.deepEqual(probeVideo(path), { frames: 20, width: 16, height: 12, countedFrom: "packets", frameRate: 10, startTime: 0 });
  for (const count of [8, 1, 3, 20]) {
    const images = loadVideo(path, count);
    assert.equal(images.length, count);
    assert.deepEqual(images.map((image) => whichFrame(image, frames)), evenFrameIndices(20, count), `${count} frames`);
    for (const image of images) assert.deepEqual([image.width, image.height, image.data.length], [16, 12, 16 * 12 * 3]);
  }
  assert.deepEqual(evenFrameIndices(20, 8), [0, 3, 5, 8, 11, 14, 16, 19]);
  assert.equal(loadVideo(path).length, 8, "8 frames by default");
});

test("asking for more frames than the video has repeats frames (each its own copy)", { skip }, () => {
  const frames = knownFrames(5, 16, 12);
  const path = encodeVideo(tempDir(), "short.mkv", frames, FFV1);
  const images = loadVideo(path, 8);
  assert.deepEqual(images.map((image) => whichFrame(image, frames)), [0, 1, 1, 2, 2, 3, 3, 4]);
  images[1].data.fill(0);
  assert.equal(whichFrame(images[2], frames), 1, "a repeated frame does not share pixels with its twin");
  assert.deepEqual(decodeVideoFrames(path, [4, 0, 4], probeVideo(path)).map((image) => whichFrame(image, frames)), [4, 0, 4]);
});

test("MP4: lossless H.264 RGB exactly, and ordinary yuv420p H.264 to its nearest frames", { skip }, () => {
  const dir = tempDir();
  const frames = knownFrames(20, 16, 12);
  const lossless = encodeVideo(dir, "rgb.mp4", frames, H264_RGB_LOSSLESS);
  assert.deepEqual(loadVideo(lossless, 8).map((image) => whichFrame(image, frames)), evenFrameIndices(20, 8));
  const lossy = encodeVideo(dir, "yuv.mp4", frames, ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"]);
  const images = loadVideo(lossy, 6);
  assert.deepEqual(images.map((image) => nearestFrame(image, frames).index), evenFrameIndices(20, 6));
  // lossy: within 16 per byte of the right frame, while the neighbouring frames are 30 or more away
  for (const image of images) assert.ok(nearestFrame(image, frames).difference < 16, `mean difference ${nearestFrame(image, frames).difference}`);
});

test("a video cut with an edit list: frames are counted by decoding when packets promise more", { skip }, () => {
  const dir = tempDir();
  const frames = knownFrames(40, 16, 12);
  const full = encodeVideo(dir, "full.mp4", frames, [...H264_RGB_LOSSLESS, "-g", "20", "-bf", "2"]);
  const cut = join(dir, "cut.mp4");
  execFileSync("ffmpeg", ["-v", "error", "-y", "-ss", "0.55", "-i", full, "-c", "copy", cut], { stdio: ["ignore", "ignore", "pipe"] });
  // how many frames decode, from ffprobe itself; the cut keeps the last ones
  const decodable = Number(execFileSync("ffprobe", ["-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", cut]).toString().trim());
  assert.ok(decodable > 10 && decodable < 40, `${decodable} frames decode`);
  assert.ok(probeVideo(cut).frames > decodable, "the packets promise more frames than decode (the case this test is for)");
  assert.equal(probeVideo(cut, { decode: true }).frames, decodable);
  const images = loadVideoFile(cut, 5);
  assert.deepEqual(images.map((image) => whichFrame(image, frames)), evenFrameIndices(decodable, 5).map((i) => 40 - decodable + i));
});

test("a rotated video comes upright, with width and height swapped", { skip }, (t) => {
  const dir = tempDir();
  const frames = knownFrames(3, 4, 2);
  const upright = encodeVideo(dir, "plain.mp4", frames, H264_RGB_LOSSLESS);
  const rotated = join(dir, "rotated.mp4");
  execFileSync("ffmpeg", ["-v", "error", "-y", "-i", upright, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated], { stdio: ["ignore", "ignore", "pipe"] });
  const sideData = execFileSync("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream_side_data=rotation", "-of", "csv=p=0", rotated]).toString();
  if (!/90/.test(sideData)) return t.skip("this ffmpeg does not write the rotate tag");
  const info = probeVideo(rotated);
  assert.deepEqual([info.width, info.height], [2, 4]);
  // rotation 90 is a quarter turn counterclockwise: the top row shown is the source's right column
  const [image] = loadVideo(rotated, 1);
  const source = frames[1];
  const expected = new Uint8Array(source.data.length);
  for (let row = 0; row < 4; row++) {
    for (let col = 0; col < 2; col++) expected.set(source.data.subarray(((col * 4) + (3 - row)) * 3, ((col * 4) + (3 - row)) * 3 + 3), (row * 2 + col) * 3);
  }
  assert.deepEqual([image.width, image.height], [2, 4]);
  assert.deepEqual(image.data, expected);
});

test("a frame folder and the same frames as a video file sample alike", { skip }, () => {
  const dir = tempDir();
  const frames = knownFrames(13, 16, 12);
  mkdirSync(join(dir, "clip"));
  frames.forEach((frame, i) => writeFileSync(join(dir, "clip", `frame_${i}.png`), encodePng(frame)));
  const file = encodeVideo(dir, "clip.mkv", frames, FFV1);
  const fromFolder = loadVideo(join(dir, "clip"), 6);
  const fromFile = loadVideo(file, 6);
  assert.deepEqual(fromFile.map((image) => whichFrame(image, frames)), fromFolder.map((image) => whichFrame(image, frames)));
  assert.deepEqual(fromFile.map((image) => whichFrame(image, frames)), evenFrameIndices(13, 6));
});

test("files that are not videos, have no video stream or run short: errors name the file", { skip }, () => {
  const dir = tempDir();
  const garbage = join(dir, "random.mp4");
  writeFileSync(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 251)));
  assert.throws(() => loadVideo(garbage, 8), (e: Error) => e.message === `${garbage}: not a video ffmpeg can read (ffprobe, exit code 1: Invalid data found when processing input)`);
  const empty = join(dir, "empty.mp4");
  writeFileSync(empty, "");
  assert.throws(() => loadVideo(empty, 8), new RegExp(`^Error: ${empty}: not a video ffmpeg can read`));
  const audio = join(dir, "tone.m4a");
  execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "sine=duration=0.5", audio], { stdio: ["ignore", "ignore", "pipe"] });
  assert.throws(() => loadVideo(audio, 8), new RegExp(`^Error: ${audio}: no video stream in this file$`));
  assert.throws(() => loadVideo(join(dir, "gone.mp4"), 8), new RegExp(`${join(dir, "gone.mp4")}: no such video file or folder`));
  const clip = encodeVideo(dir, "clip.mkv", knownFrames(20, 16, 12), FFV1);
  assert.throws(() => decodeVideoFrames(clip, [0, 25], { width: 16, height: 12 }), new RegExp(`^Error: ${clip}: ffmpeg decoded 1 of the 2 frames asked for \\(frame 25 missing`));
  assert.throws(() => loadVideoFile(clip, 0), new RegExp(`${clip}: the number of frames to sample must be an integer >= 1, got 0`));
});

test("without ffprobe or ffmpeg: the error says to install ffmpeg", () => {
  const dir = tempDir();
  const path = join(dir, "clip.mp4");
  writeFileSync(path, "not looked at");
  assert.throws(() => loadVideo(path, 8, { ffprobe: join(dir, "no-ffprobe") }), new RegExp(`^Error: ${path}: cannot decode the video: ffprobe not found .*apt-get install ffmpeg`));
  const saved = process.env.VLMKIT_FFPROBE;
  process.env.VLMKIT_FFPROBE = join(dir, "no-ffprobe-either");
  try {
    assert.throws(() => loadVideo(path, 8), /ffprobe not found \(tried '.*no-ffprobe-either'\); install ffmpeg \(apt-get install ffmpeg\) or set VLMKIT_FFPROBE/);
  } finally {
    if (saved === undefined) delete process.env.VLMKIT_FFPROBE;
    else process.env.VLMKIT_FFPROBE = saved;
  }
});

test("ffprobe found but not ffmpeg: the same hint, for ffmpeg", { skip }, () => {
  const dir = tempDir();
  const clip = encodeVideo(dir, "clip.mkv", knownFrames(4, 16, 12), FFV1);
  assert.throws(() => loadVideo(clip, 2, { ffmpeg: join(dir, "no-ffmpeg") }), new RegExp(`^Error: ${clip}: cannot decode the video: ffmpeg not found .*apt-get install ffmpeg\\) or set VLMKIT_FFMPEG`));
});

test("paths with a colon or a leading dash are files to ffmpeg, not protocols or options", { skip }, () => {
  const dir = tempDir();
  const frames = knownFrames(6, 16, 12);
  const clip = encodeVideo(dir, "clip.mkv", frames, FFV1);
  for (const name of ["take:2.mkv", "-i.mkv"]) {
    copyFileSync(clip, join(dir, name));
    assert.deepEqual(loadVideo(join(dir, name), 3).map((image) => whichFrame(image, frames)), evenFrameIndices(6, 3), name);
  }
  const saved = process.cwd();
  process.chdir(dir);
  try {
    assert.deepEqual(loadVideo("-i.mkv", 2).map((image) => whichFrame(image, frames)), [0, 5], "a relative path");
  } finally {
    process.chdir(saved);
  }
});

test("frame counts: packets first, then the header, then duration x frame rate; none, or zero frames, is an error", () => {
  const dir = tempDir();
  const path = join(dir, "clip.mp4");
  writeFileSync(path, "only the stand-in ffprobe looks at this");
  const probe = (stream: object, format: object = {}) => probeVideo(path, { ffprobe: fakeFfprobe(dir, { streams: [{ width: 16, height: 12, ...stream }], format }) });
  assert.deepEqual(probe({ nb_read_packets: "30", nb_frames: "31", start_time: "0.5", avg_frame_rate: "10/1" }), { frames: 30, width: 16, height: 12, countedFrom: "packets", frameRate: 10, startTime: 0.5 });
  assert.deepEqual(probe({ nb_read_packets: "30", nb_frames: "31" }), { frames: 30, width: 16, height: 12, countedFrom: "packets" });
  assert.deepEqual(probe({ nb_frames: "31", duration: "9" }), { frames: 31, width: 16, height: 12, countedFrom: "header" });
  assert.deepEqual(probe({ avg_frame_rate: "30000/1001" }, { duration: "2.002" }), { frames: 60, width: 16, height: 12, countedFrom: "duration", frameRate: 30000 / 1001 });
  assert.deepEqual(probe({ avg_frame_rate: "0/0", r_frame_rate: "25/1", duration: "1.2" }), { frames: 30, width: 16, height: 12, countedFrom: "duration", frameRate: 25 });
  assert.throws(() => probe({ avg_frame_rate: "0/0" }), new RegExp(`^Error: ${path}: cannot tell how many frames the video has`));
  assert.deepEqual(probe({ nb_read_packets: "5", side_data_list: [{ rotation: -90 }] }), { frames: 5, width: 12, height: 16, countedFrom: "packets" });
  assert.deepEqual(probe({ nb_read_packets: "5", side_data_list: [{ rotation: 180 }] }), { frames: 5, width: 16, height: 12, countedFrom: "packets" });
  const zero = fakeFfprobe(dir, { streams: [{ width: 16, height: 12, nb_read_packets: "0" }] });
  assert.throws(() => loadVideo(path, 8, { ffprobe: zero }), new RegExp(`^Error: ${path}: the video has no frames$`));
  const noSize = fakeFfprobe(dir, { streams: [{ nb_read_packets: "3" }] });
  assert.throws(() => loadVideo(path, 8, { ffprobe: noSize }), new RegExp(`^Error: ${path}: ffprobe reports no frame size`));
  const failing = fakeFfprobe(dir, {}, 1, "first line\nmoov atom not found");
  assert.throws(() => loadVideo(path, 8, { ffprobe: failing }), new RegExp(`^Error: ${path}: not a video ffmpeg can read \\(ffprobe, exit code 1: moov atom not found\\)$`));
});

/** `count` frames of one colour each that encodes the frame's number (R = k mod 256, G = 16 * floor(k / 256)). */
function numberedFrames(count: number, width: number, height: number) {
  return Array.from({ length: count }, (_, k) => {
    const data = new Uint8Array(width * height * 3);
    for (let p = 0; p < data.length; p += 3) [data[p], data[p + 1], data[p + 2]] = [k & 255, (k >> 8) * 16, 77];
    return { width, height, data };
  });
}
const frameNumber = (image: { data: Uint8Array }) => image.data[0] + (image.data[1] / 16) * 256;

test("a long video is sampled by seeking to each frame: the same frames as decoding it whole", { skip, timeout: 120_000 }, () => {
  const frames = numberedFrames(1500, 8, 8);
  const dir = tempDir();
  // FFV1 (every frame a keyframe) and lossless H.264 (keyframes 250 frames apart: seeks decode from the one before)
  for (const [name, codec] of [["long.mkv", FFV1], ["long.mp4", H264_RGB_LOSSLESS]] as const) {
    const path = encodeVideo(dir, name, frames, codec);
    const info = probeVideo(path);
    assert.equal(info.frames, 1500);
    for (const count of [8, 3]) {
      const wanted = evenFrameIndices(1500, count);
      const sought = seekVideoFrames(path, wanted, info)!;
      assert.deepEqual(sought.map(frameNumber), wanted, `${name}, ${count} frames by seeking`);
      const whole = decodeVideoFrames(path, wanted, info);
      sought.forEach((image, i) => assert.ok(Buffer.from(image.data).equals(Buffer.from(whole[i].data)), `${name} frame ${wanted[i]}: seek and decode agree`));
      // loadVideo seeks above seekAbove and decodes whole below it, with the same result
      assert.deepEqual(loadVideo(path, count).map(frameNumber), wanted);
      assert.deepEqual(loadVideo(path, count, { seekAbove: Infinity }).map(frameNumber), wanted);
    }
  }
});
