// Synthetic videos for tests: frames with known pixels, encoded by the system's ffmpeg.
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RgbImage } from "../../src/data/image.js";

/** Why the ffmpeg tests cannot run here, or false when ffmpeg and ffprobe are installed. */
export const noFfmpeg: string | false =
  spawnSync("ffmpeg", ["-version"]).error || spawnSync("ffprobe", ["-version"]).error
    ? "ffmpeg/ffprobe are not installed (apt-get install ffmpeg; scripts/setup.sh installs them)"
    : false;

/** `count` frames, each different everywhere: frame k has a gradient shifted by k, so any frame identifies k. */
export function knownFrames(count: number, width: number, height: number): RgbImage[] {
  return Array.from({ length: count }, (_, k) => {
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const p = (y * width + x) * 3;
        data[p] = (k * 12 + x * 3) & 255;
        data[p + 1] = (255 - k * 9 + y * 4) & 255;
        data[p + 2] = (x * y + k * 29) & 255;
      }
    }
    return { width, height, data };
  });
}

/** Encodes frames at 10 fps into `dir/name` with the given ffmpeg output options (codec, pixel format). */
export function encodeVideo(dir: string, name: string, frames: RgbImage[], outputArgs: string[]): string {
  const raw = join(dir, `${name}.rgb`);
  writeFileSync(raw, Buffer.concat(frames.map((f) => f.data)));
  const out = join(dir, name);
  const { width, height } = frames[0];
  execFileSync("ffmpeg", ["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", `${width}x${height}`, "-r", "10", "-i", raw, ...outputArgs, out], { stdio: ["ignore", "ignore", "pipe"] });
  return out;
}

/** Lossless RGB encodings: FFV1 in Matroska, and H.264 RGB at qp 0 in MP4. */
export const FFV1 = ["-c:v", "ffv1", "-pix_fmt", "bgr0"];
export const H264_RGB_LOSSLESS = ["-c:v", "libx264rgb", "-qp", "0"];

/** The index of the known frame equal to `image` pixel for pixel, or -1. */
export function whichFrame(image: RgbImage, frames: RgbImage[]): number {
  return frames.findIndex((f) => f.width === image.width && f.height === image.height && Buffer.from(f.data).equals(Buffer.from(image.data)));
}

/** The index of the known frame closest to `image` (mean absolute difference per byte) and that difference. */
export function nearestFrame(image: RgbImage, frames: RgbImage[]): { index: number; difference: number } {
  let best = { index: -1, difference: Infinity };
  frames.forEach((f, index) => {
    let sum = 0;
    for (let i = 0; i < f.data.length; i++) sum += Math.abs(f.data[i] - image.data[i]);
    const difference = sum / f.data.length;
    if (difference < best.difference) best = { index, difference };
  });
  return best;
}
