// Videos stored as folders of frame images (frame_00.png, frame_01.png, ...): what the synthetic dataset writes,
// and what a user gets from `ffmpeg -i clip.mp4 clip/frame_%04d.png`. Frames are sampled evenly like video files.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { isImageFileName, loadImage, type RgbImage } from "./image.js";

/** True when `path` is a folder (a video given as its frames). */
export function isFrameFolder(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** `count` indices spread evenly over `total` frames, first and last included (repeats when total < count). */
export function evenFrameIndices(total: number, count: number): number[] {
  if (total < 1) throw new Error("evenFrameIndices: the video has no frames");
  if (count === 1) return [Math.floor((total - 1) / 2)];
  return Array.from({ length: count }, (_, i) => Math.round((i * (total - 1)) / (count - 1)));
}

/** The image files of a folder (a video's frames, or images to predict) in natural name order: frame_2 before frame_10. */
export function listImageFiles(dir: string): string[] {
  const names = readdirSync(dir).filter((name) => isImageFileName(name) && statSync(join(dir, name)).isFile());
  names.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  return names.map((name) => join(dir, name));
}

/** `numFrames` frames sampled evenly from a folder of frame images; errors name the folder. */
export function loadFrameFolder(dir: string, numFrames = 8): RgbImage[] {
  if (!isFrameFolder(dir)) throw new Error(`${dir}: not a folder of video frames`);
  const frames = listImageFiles(dir);
  if (frames.length === 0) throw new Error(`${dir}: no frame images (.png, .jpg) in this video folder`);
  const images = evenFrameIndices(frames.length, numFrames).map((i) => loadImage(frames[i]));
  const { width, height } = images[0];
  const odd = images.findIndex((image) => image.width !== width || image.height !== height);
  if (odd >= 0) throw new Error(`${dir}: frames differ in size (${width}x${height} and ${images[odd].width}x${images[odd].height})`);
  return images;
}
