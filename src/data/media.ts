// The media of records and command-line inputs: images, and videos (a video file or a folder of frames) sampled to
// a number of frames. MediaCache decodes each record once, so epochs after the first decode nothing. A file is told
// an image or a video by its first bytes; what `vlmkit predict` makes of an input depends on what the run was
// trained on (loadPredictInputs).
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { IMAGE_FORMATS, isImageFileName, loadImage, type RgbImage } from "./image.js";
import { gifFrameCount, looksLikeVideo, stillFormatOf } from "./still_formats.js";
import { loadVideo } from "./video.js";
import { isFrameFolder, listImageFiles } from "./frame_folder.js";
import type { LabeledRecord } from "./records.js";

/** What a record says about its media. */
export type MediaRecord = Pick<LabeledRecord, "images" | "video" | "source">;

/** The images of a record: its image(s), or numFrames frames of its video (a video file, or a folder of frames). */
export function loadRecordImages(record: MediaRecord, numFrames: number): RgbImage[] {
  if (record.images) return record.images.map((path) => loadImage(path));
  if (record.video) return loadVideo(record.video, numFrames);
  throw new Error(`${record.source}: the record has neither images nor a video`);
}

/** A record's media could not be read or decoded: the message names the record (file:line) and the decoder's reason. */
export class MediaError extends Error {
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(reason.includes(source) ? reason : `${source}: ${reason}`);
  }
}

/** Decoded media by record, so epochs after the first decode nothing. */
export class MediaCache {
  readonly #images = new Map<string, RgbImage[]>();
  constructor(readonly numFrames: number) {}

  get(record: MediaRecord): RgbImage[] {
    const key = record.video ?? record.images?.join("\n") ?? record.source;
    let images = this.#images.get(key);
    if (!images) {
      try {
        images = loadRecordImages(record, this.numFrames);
      } catch (error) {
        throw new MediaError(record.source, (error as Error).message);
      }
      this.#images.set(key, images);
    }
    return images;
  }
}

function firstBytes(path: string): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const head = new Uint8Array(16);
    return head.subarray(0, readSync(fd, head, 0, head.length, 0));
  } finally {
    closeSync(fd);
  }
}

/** What a command-line file is, by its first bytes (then its name): a still image, an animated GIF, a video, or unknown. */
export function inputKind(path: string): "image" | "animated-gif" | "video" | "unknown" {
  const head = firstBytes(path);
  const format = stillFormatOf(head);
  if (format === "gif") {
    try {
      if (gifFrameCount(readFileSync(path)) > 1) return "animated-gif";
    } catch {
      // a damaged GIF: decoding it as an image gives the error that names it
    }
  }
  if (format || isImageFileName(path)) return "image";
  return looksLikeVideo(head) ? "video" : "unknown";
}

/**
 * The images of a command-line input for `vlmkit generate`: an image file, or a video (a video file, or a folder of
 * frames). An animated GIF gives its first frame.
 */
export function loadInput(path: string, numFrames: number): RgbImage[] {
  const resolved = resolve(path);
  if (!existsSync(resolved)) throw new Error(`${path}: no such file or folder`);
  if (isFrameFolder(resolved)) return loadVideo(resolved, numFrames);
  const kind = inputKind(resolved);
  if (kind === "image" || kind === "animated-gif") return [loadImage(resolved)];
  return loadVideo(resolved, numFrames);
}

/** What a run was trained on: how many training and validation records had images, and how many a video. */
export interface TrainingMedia {
  images: number;
  videos: number;
}

export function countMedia(records: { images?: unknown; video?: unknown }[]): TrainingMedia {
  return { images: records.filter((r) => r.images !== undefined).length, videos: records.filter((r) => r.video !== undefined).length };
}

/** One input of `vlmkit predict` (a file, or one image of a folder) and its decoded images. */
export interface NamedInput {
  input: string;
  images: RgbImage[];
}

/**
 * The inputs of `vlmkit predict` for a run trained on `media` (null: a run folder from before runs recorded it).
 * A run is a video run when its training records were all videos. Then a video file or a folder of frames is one
 * video (an animated GIF too), and a still image is an error: a video model asked about one frame answers, but
 * not about anything it learned. On any other run a still image is one input, a folder is one input per image
 * file (by name), and a video file is an error, except on a run trained on images and videos alike, and on a run
 * folder that does not record its media, where a video file is a video as it always was.
 */
export function loadPredictInputs(path: string, numFrames: number, media: TrainingMedia | null): NamedInput[] {
  const resolved = resolve(path);
  if (!existsSync(resolved)) throw new Error(`${path}: no such file or folder`);
  const videoRun = media !== null && media.videos > 0 && media.images === 0;
  const imageRun = media !== null && media.images > 0 && media.videos === 0;
  const trained = media ? `this run was trained on ${videoRun ? `videos (${numFrames} frames each)` : "images"}` : "";
  if (isFrameFolder(resolved)) {
    if (videoRun) return [{ input: path, images: loadVideo(resolved, numFrames) }];
    const files = listImageFiles(resolved);
    if (files.length === 0) throw new Error(`${path}: no image files (${IMAGE_FORMATS}) in this folder; give image files, or a folder of them`);
    return files.map((file) => ({ input: file, images: [loadImage(file)] }));
  }
  const kind = inputKind(resolved);
  if (videoRun) {
    if (kind === "image") throw new Error(`${path}: a still image, but ${trained}; give a video file or a folder of its frames`);
    return [{ input: path, images: loadVideo(resolved, numFrames) }];
  }
  if (kind === "image" || kind === "animated-gif") return [{ input: path, images: [loadImage(resolved)] }];
  if (imageRun) {
    if (kind === "video") throw new Error(`${path}: a video, but ${trained}; give image files (${IMAGE_FORMATS}) or a folder of them`);
    throw new Error(`${path}: not an image file (${IMAGE_FORMATS}), and ${trained}; give image files or a folder of them`);
  }
  return [{ input: path, images: loadVideo(resolved, numFrames) }];
}
