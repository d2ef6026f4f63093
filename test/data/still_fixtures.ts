// Test files of known pixels in the still formats beside PNG/JPEG: synthetic images (under 256 colours, so a GIF
// holds them exactly), a hand-written BMP encoder, GIFs by omggif's writer, lossless and lossy WebP by libwebp
// (webp-wasm, a test-only dependency), TIFF by utif2.
import { GifWriter } from "omggif";
import UTIF from "utif2";
import { createRequire } from "node:module";
import type { RgbImage } from "../../src/data/image.js";
import { makeSyntheticImages } from "../../src/data/synthetic.js";

// a CommonJS module whose functions an ESM import cannot name
const webp = createRequire(import.meta.url)("webp-wasm") as typeof import("webp-wasm");

/** The i-th synthetic image (0: a red circle); they have under 256 colours, so a GIF holds them exactly. */
export function paletteImage(index = 0, size = 32, seed = 7): RgbImage {
  return makeSyntheticImages(index + 1, { size, seed })[index].image;
}

function rgba(image: RgbImage): Uint8Array {
  const out = new Uint8Array(image.width * image.height * 4);
  for (let i = 0; i < image.width * image.height; i++) {
    out.set(image.data.subarray(3 * i, 3 * i + 3), 4 * i);
    out[4 * i + 3] = 255;
  }
  return out;
}

/** A GIF of an image with at most 256 colours; `extraFrames` more frames (other pixels) make it an animation. */
export function encodeGif(image: RgbImage, extraFrames: RgbImage[] = []): Uint8Array {
  const colours = new Map<number, number>();
  const indexed = (img: RgbImage) => Array.from({ length: img.width * img.height }, (_, i) => {
    const key = (img.data[3 * i] << 16) | (img.data[3 * i + 1] << 8) | img.data[3 * i + 2];
    if (!colours.has(key)) colours.set(key, colours.size);
    return colours.get(key)!;
  });
  const frames = [image, ...extraFrames].map(indexed);
  if (colours.size > 256) throw new Error(`encodeGif: ${colours.size} colours, a GIF palette holds 256`);
  const palette = [...colours.keys()];
  while (palette.length < 256) palette.push(0);
  const buffer = new Uint8Array(image.width * image.height * frames.length + 4096);
  const writer = new GifWriter(buffer, image.width, image.height, { palette, loop: frames.length > 1 ? 0 : undefined });
  for (const frame of frames) writer.addFrame(0, 0, image.width, image.height, frame, { delay: 10 });
  return buffer.slice(0, writer.end());
}

/** A 24-bit BMP (BITMAPINFOHEADER), rows bottom-up as most writers store them, or top-down (negative height). */
export function encodeBmp(image: RgbImage, options: { topDown?: boolean } = {}): Uint8Array {
  const { width, height } = image;
  const stride = Math.ceil((width * 3) / 4) * 4;
  const out = new Uint8Array(54 + stride * height);
  const view = new DataView(out.buffer);
  out[0] = 0x42, out[1] = 0x4d;
  view.setUint32(2, out.length, true);
  view.setUint32(10, 54, true);
  view.setUint32(14, 40, true);
  view.setInt32(18, width, true);
  view.setInt32(22, options.topDown ? -height : height, true);
  view.setUint16(26, 1, true);
  view.setUint16(28, 24, true);
  view.setUint32(34, stride * height, true);
  for (let y = 0; y < height; y++) {
    const row = 54 + (options.topDown ? y : height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const from = 3 * (y * width + x);
      out[row + 3 * x] = image.data[from + 2];
      out[row + 3 * x + 1] = image.data[from + 1];
      out[row + 3 * x + 2] = image.data[from];
    }
  }
  return out;
}

/** A WebP by libwebp: lossless keeps every pixel (exact: colours under zero alpha too), lossy at `quality`. */
export async function encodeWebp(image: RgbImage, options: { lossless: boolean; quality?: number }): Promise<Uint8Array> {
  const pixels = { data: new Uint8ClampedArray(rgba(image)), width: image.width, height: image.height };
  const bytes = await webp.encode(pixels, options.lossless ? { lossless: 1, exact: 1, quality: 100 } : { quality: options.quality ?? 90 });
  return new Uint8Array(bytes);
}

/** An uncompressed RGBA TIFF. */
export function encodeTiff(image: RgbImage): Uint8Array {
  return new Uint8Array(UTIF.encodeImage(rgba(image), image.width, image.height));
}
