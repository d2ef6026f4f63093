// The media of records and command-line inputs: images, and videos (a video file or a folder of frames) sampled to
// a number of frames. MediaCache decodes each record once, so epochs after the first decode nothing.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { loadImage, type RgbImage } from "./image.js";
import { loadVideo } from "./video.js";
import { isFrameFolder } from "./frame_folder.js";
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

const IMAGE_FILE = /\.(png|jpe?g)$/i;

/** The images of a command-line input: an image file, or a video (a video file, or a folder of frames). */
export function loadInput(path: string, numFrames: number): RgbImage[] {
  const resolved = resolve(path);
  if (!existsSync(resolved)) throw new Error(`${path}: no such file or folder`);
  if (isFrameFolder(resolved)) return loadVideo(resolved, numFrames);
  if (IMAGE_FILE.test(resolved)) return [loadImage(resolved)];
  return loadVideo(resolved, numFrames);
}
