// A small synthetic visual dataset, generated deterministically from a seed: images of one object that differs in
// shape, colour, size and position (class = "<colour> <shape>"), and clips where a square moves left, right, up or
// down (class = the direction, so no single frame tells). Written as PNG files with JSONL records ({image, label} /
// {video, label}) and LLaVA-format conversations for generative fine-tuning.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodePng, type RgbImage } from "./image.js";
import { seededRandom } from "../torch/seeded_random.js";

export const SHAPES = ["circle", "square", "triangle"] as const;
export const COLOURS = { red: [215, 45, 40], green: [40, 175, 65], blue: [45, 85, 225] } as const;
export const DIRECTIONS = ["left", "right", "up", "down"] as const;
export type Shape = (typeof SHAPES)[number];
export type Colour = keyof typeof COLOURS;
export type Direction = (typeof DIRECTIONS)[number];

/** The question of the conversation records; the answer is the class name ("a red circle"). */
export const SYNTHETIC_QUESTION = "What is in the image?";
export const SYNTHETIC_VIDEO_QUESTION = "Which way does the square move?";

/** The class names of the image set, in label-index order: every colour with every shape. */
export function syntheticImageLabels(): string[] {
  return Object.keys(COLOURS).flatMap((colour) => SHAPES.map((shape) => `${colour} ${shape}`));
}

export interface ObjectSpec {
  shape: Shape;
  colour: Colour;
  /** Centre in pixels. */
  cx: number;
  cy: number;
  /** Half the object's width in pixels. */
  radius: number;
}

const clampByte = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

function insideShape(shape: Shape, dx: number, dy: number, radius: number): boolean {
  if (shape === "circle") return dx * dx + dy * dy <= radius * radius;
  if (shape === "square") return Math.abs(dx) <= radius * 0.95 && Math.abs(dy) <= radius * 0.95;
  // An upward-pointing triangle: apex at -radius, base at +radius * 0.8, width 2 * radius at the base.
  const top = -radius;
  const bottom = radius * 0.8;
  if (dy < top || dy > bottom) return false;
  const halfWidth = (radius * (dy - top)) / (bottom - top);
  return Math.abs(dx) <= halfWidth;
}

/** Background with per-image brightness and per-pixel noise; the random source decides both. */
function background(size: number, random: () => number): Float32Array {
  const pixels = new Float32Array(size * size * 3);
  const base = 25 + random() * 50;
  const tint = [random() * 12 - 6, random() * 12 - 6, random() * 12 - 6];
  for (let i = 0; i < size * size; i++) {
    const noise = (random() - 0.5) * 16;
    for (let c = 0; c < 3; c++) pixels[i * 3 + c] = base + tint[c] + noise;
  }
  return pixels;
}

/** Paints an object with 4x4 supersampled edges; the colour is jittered a little per object. */
function paintObject(pixels: Float32Array, size: number, object: ObjectSpec, random: () => number): void {
  const colour = COLOURS[object.colour].map((v) => v + (random() - 0.5) * 40);
  const reach = object.radius + 1;
  const x0 = Math.max(0, Math.floor(object.cx - reach));
  const x1 = Math.min(size - 1, Math.ceil(object.cx + reach));
  const y0 = Math.max(0, Math.floor(object.cy - reach));
  const y1 = Math.min(size - 1, Math.ceil(object.cy + reach));
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      let covered = 0;
      for (let sy = 0; sy < 4; sy++) {
        for (let sx = 0; sx < 4; sx++) {
          if (insideShape(object.shape, x + (sx + 0.5) / 4 - object.cx, y + (sy + 0.5) / 4 - object.cy, object.radius)) covered++;
        }
      }
      if (covered === 0) continue;
      const alpha = covered / 16;
      const at = (y * size + x) * 3;
      for (let c = 0; c < 3; c++) pixels[at + c] = pixels[at + c] * (1 - alpha) + colour[c] * alpha;
    }
  }
}

function toImage(pixels: Float32Array, size: number): RgbImage {
  const data = new Uint8Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) data[i] = clampByte(pixels[i]);
  return { width: size, height: size, data };
}

/** One image of one object, drawn with the given random source (background noise and colour jitter). */
export function renderObjectImage(object: ObjectSpec, size: number, random: () => number): RgbImage {
  const pixels = background(size, random);
  paintObject(pixels, size, object, random);
  return toImage(pixels, size);
}

export interface SyntheticImageSample {
  image: RgbImage;
  label: string;
  object: ObjectSpec;
}

/** `count` images, classes in turn (balanced), shape size and position drawn from the seed. */
export function makeSyntheticImages(count: number, options: { size?: number; seed?: number } = {}): SyntheticImageSample[] {
  const size = options.size ?? 32;
  const random = seededRandom(options.seed ?? 0);
  const colours = Object.keys(COLOURS) as Colour[];
  const samples: SyntheticImageSample[] = [];
  for (let i = 0; i < count; i++) {
    const colour = colours[Math.floor(i / SHAPES.length) % colours.length];
    const shape = SHAPES[i % SHAPES.length];
    const radius = size * (0.28 + random() * 0.04);
    const margin = radius + 1;
    const object = { shape, colour, radius, cx: margin + random() * (size - 2 * margin), cy: margin + random() * (size - 2 * margin) };
    samples.push({ image: renderObjectImage(object, size, random), label: `${colour} ${shape}`, object });
  }
  return samples;
}

export interface SyntheticClip {
  frames: RgbImage[];
  label: Direction;
}

/**
 * `count` clips of `frames` frames: a square of a random colour moves steadily in one direction (class in turn,
 * balanced) along a path whose middle is uniform over the image for every direction, so the middle frames say
 * nothing about the class and the motion must be read across frames.
 */
export function makeSyntheticClips(count: number, options: { size?: number; frames?: number; seed?: number } = {}): SyntheticClip[] {
  const size = options.size ?? 32;
  const frameCount = options.frames ?? 8;
  const random = seededRandom(options.seed ?? 0);
  const colours = Object.keys(COLOURS) as Colour[];
  const clips: SyntheticClip[] = [];
  for (let i = 0; i < count; i++) {
    const direction = DIRECTIONS[i % DIRECTIONS.length];
    const colour = colours[Math.floor(random() * colours.length)];
    const radius = size * 0.14;
    const margin = radius + 1;
    const travel = size - 2 * margin;
    const span = travel * (0.5 + random() * 0.3);
    const step = span / (frameCount - 1);
    // the middle of the path is uniform over the image whatever the direction: a middle frame says nothing
    const middle = margin + span / 2 + random() * (travel - span);
    const across = margin + random() * travel;
    const [dx, dy] = direction === "left" ? [-1, 0] : direction === "right" ? [1, 0] : direction === "up" ? [0, -1] : [0, 1];
    const startX = dx === 0 ? across : middle - (dx * span) / 2;
    const startY = dy === 0 ? across : middle - (dy * span) / 2;
    const frames: RgbImage[] = [];
    const frameRandom = seededRandom(Math.floor(random() * 2 ** 32));
    const backgroundSeed = Math.floor(random() * 2 ** 32);
    for (let f = 0; f < frameCount; f++) {
      // the same background every frame (a still camera), fresh sensor noise is not needed to make the point
      const pixels = background(size, seededRandom(backgroundSeed));
      paintObject(pixels, size, { shape: "square", colour, radius, cx: startX + dx * step * f, cy: startY + dy * step * f }, frameRandom);
      frames.push(toImage(pixels, size));
    }
    clips.push({ frames, label: direction });
  }
  return clips;
}

export interface SyntheticDatasetOptions {
  /** Training images (default 360) and held-out images (default 180); the held-out set has its own seed. */
  trainImages?: number;
  valImages?: number;
  /** Training and held-out clips (default 96 and 48). 0 writes no video set. */
  trainClips?: number;
  valClips?: number;
  imageSize?: number;
  framesPerClip?: number;
  seed?: number;
}

export interface SyntheticDatasetFiles {
  dir: string;
  /** {image, label} records and the label map of the image set. */
  trainJsonl: string;
  valJsonl: string;
  labels: string;
  /** LLaVA-format conversations of the same images. */
  sftTrainJsonl: string;
  sftValJsonl: string;
  /** {video, label} records (each video a folder of PNG frames) and their label map, when clips were written. */
  videoTrainJsonl?: string;
  videoValJsonl?: string;
  videoLabels?: string;
}

function writeJsonl(path: string, rows: unknown[]): void {
  writeFileSync(path, rows.map((row) => JSON.stringify(row)).join("\n") + "\n");
}

/** The conversation record (LLaVA format) of one image: question and the class name as the answer. */
export function conversationRecord(image: string, label: string, question = SYNTHETIC_QUESTION): { image: string; conversations: { from: string; value: string }[] } {
  return { image, conversations: [{ from: "human", value: `<image>\n${question}` }, { from: "gpt", value: `a ${label}` }] };
}

/**
 * Writes the dataset under `dir`:
 *   images/{train,val}_NNNN.png, train.jsonl, val.jsonl, labels.json, sft_train.jsonl, sft_val.jsonl,
 *   video/clips/{train,val}_NNNN/frame_NN.png, video/train.jsonl, video/val.jsonl, video/labels.json
 * Paths inside the JSONL files are relative to the file. Same options, same bytes.
 */
export function writeSyntheticDataset(dir: string, options: SyntheticDatasetOptions = {}): SyntheticDatasetFiles {
  const seed = options.seed ?? 0;
  const size = options.imageSize ?? 32;
  mkdirSync(join(dir, "images"), { recursive: true });
  const labels = syntheticImageLabels();
  const files: SyntheticDatasetFiles = {
    dir,
    trainJsonl: join(dir, "train.jsonl"),
    valJsonl: join(dir, "val.jsonl"),
    labels: join(dir, "labels.json"),
    sftTrainJsonl: join(dir, "sft_train.jsonl"),
    sftValJsonl: join(dir, "sft_val.jsonl"),
  };
  writeFileSync(files.labels, JSON.stringify(labels, null, 2) + "\n");
  const splits = [
    { name: "train", count: options.trainImages ?? 360, seed: seed * 2 + 1, jsonl: files.trainJsonl, sft: files.sftTrainJsonl },
    { name: "val", count: options.valImages ?? 180, seed: seed * 2 + 2, jsonl: files.valJsonl, sft: files.sftValJsonl },
  ];
  for (const split of splits) {
    const samples = makeSyntheticImages(split.count, { size, seed: split.seed });
    const records = samples.map((sample, i) => {
      const image = `images/${split.name}_${String(i).padStart(4, "0")}.png`;
      writeFileSync(join(dir, image), encodePng(sample.image));
      return { image, label: sample.label };
    });
    writeJsonl(split.jsonl, records);
    writeJsonl(split.sft, records.map((r) => conversationRecord(r.image, r.label)));
  }

  const trainClips = options.trainClips ?? 96;
  const valClips = options.valClips ?? 48;
  if (trainClips > 0) {
    const videoDir = join(dir, "video");
    mkdirSync(join(videoDir, "clips"), { recursive: true });
    files.videoTrainJsonl = join(videoDir, "train.jsonl");
    files.videoValJsonl = join(videoDir, "val.jsonl");
    files.videoLabels = join(videoDir, "labels.json");
    writeFileSync(files.videoLabels, JSON.stringify([...DIRECTIONS], null, 2) + "\n");
    const clipSplits = [
      { name: "train", count: trainClips, seed: seed * 2 + 1001, jsonl: files.videoTrainJsonl },
      { name: "val", count: valClips, seed: seed * 2 + 1002, jsonl: files.videoValJsonl },
    ];
    for (const split of clipSplits) {
      const clips = makeSyntheticClips(split.count, { size, frames: options.framesPerClip ?? 8, seed: split.seed });
      const records = clips.map((clip, i) => {
        const video = `clips/${split.name}_${String(i).padStart(4, "0")}`;
        mkdirSync(join(videoDir, video), { recursive: true });
        clip.frames.forEach((frame, f) => writeFileSync(join(videoDir, video, `frame_${String(f).padStart(2, "0")}.png`), encodePng(frame)));
        return { video, label: clip.label };
      });
      writeJsonl(split.jsonl, records);
    }
  }
  return files;
}
