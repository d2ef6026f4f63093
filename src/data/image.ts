// Images as 8-bit RGB arrays: decoding image files (PNG and JPEG with our own decoders, GIF, BMP, WebP and TIFF with
// the libraries of still_formats.ts), encoding PNG, and turning images into tensors. For PNG and JPEG decodeImage gives the pixels Pillow gives for Image.open(path).convert("RGB"), which is what transformers' image
// processors start from: alpha is dropped (not composited), gray is repeated to 3 channels, palettes are expanded.
import { readFileSync } from "node:fs";
import { fromBuffer } from "../torch/creation.js";
import type { Tensor } from "../torch/tensor.js";
import { decodeJpeg } from "./jpeg.js";
import { decodePng, encodePng as encodePngPixels } from "./png.js";
import { decodeBmp, decodeGif, decodeTiff, decodeWebp, stillFormatOf, type StillFormat } from "./still_formats.js";

/** An 8-bit RGB image: data is row-major, 3 bytes per pixel (R, G, B), length width * height * 3. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface DecodeOptions {
  /**
   * Rotate/flip by the file's EXIF orientation tag (as PIL.ImageOps.exif_transpose, which transformers' load_image
   * applies). Default false: Image.open() does not apply it either.
   */
  applyExifOrientation?: boolean;
}

export interface DecodedImage extends RgbImage {
  format: StillFormat;
  /** Alpha channel of the source (PNG with alpha or tRNS), one byte per pixel; not applied to data. */
  alpha?: Uint8Array;
  /** The EXIF orientation tag (1..8) found in the file, whether or not it was applied. */
  exifOrientation?: number;
}

/** The image formats decodeImage reads, for messages. */
export const IMAGE_FORMATS = "PNG, JPEG, GIF, BMP, WebP or TIFF";

/** A file name with the extension of a format decodeImage reads (image folders, frame folders, predict inputs). */
export function isImageFileName(name: string): boolean {
  return /\.(png|jpe?g|gif|bmp|webp|tiff?)$/i.test(name);
}

const OTHER_DECODERS = { gif: decodeGif, bmp: decodeBmp, webp: decodeWebp, tiff: decodeTiff };

/** Decode image bytes (the format told by its first bytes) to RGB. `nameForErrors` (a path or description) starts every error message. */
export function decodeImage(bytes: Uint8Array, nameForErrors = "image", options: DecodeOptions = {}): DecodedImage {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const format = stillFormatOf(view);
  let decoded: DecodedImage;
  if (format === "png") {
    const png = decodePng(view, nameForErrors);
    const { rgb, alpha } = toRgb(png.data, png.width * png.height, png.channels);
    decoded = { width: png.width, height: png.height, data: rgb, format: "png", alpha, exifOrientation: png.exifOrientation };
  } else if (format === "jpeg") {
    const jpeg = decodeJpeg(view, nameForErrors);
    const { rgb } = toRgb(jpeg.data, jpeg.width * jpeg.height, jpeg.channels);
    decoded = { width: jpeg.width, height: jpeg.height, data: rgb, format: "jpeg", exifOrientation: jpeg.exifOrientation };
  } else if (format) {
    let rgba;
    try {
      rgba = OTHER_DECODERS[format](view);
    } catch (error) {
      throw new Error(`${nameForErrors}: invalid or damaged ${format.toUpperCase()} file (${(error as Error).message}); re-export it, or convert it to PNG`);
    }
    // as Pillow's convert("RGB"): alpha is dropped, not composited
    decoded = { width: rgba.width, height: rgba.height, data: toRgb(rgba.data, rgba.width * rgba.height, 4).rgb, format };
  } else {
    const head = Array.from(view.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(`${nameForErrors}: not an image file (${IMAGE_FORMATS}; first bytes: ${head || "none, the file is empty"})`);
  }
  if (options.applyExifOrientation && decoded.exifOrientation && decoded.exifOrientation !== 1) {
    const oriented = applyOrientation(decoded, decoded.exifOrientation, 3);
    const alpha = decoded.alpha && applyOrientation({ ...decoded, data: decoded.alpha }, decoded.exifOrientation, 1).data;
    decoded = { ...decoded, ...oriented, alpha };
  }
  return decoded;
}

/** Read and decode an image file (PNG, JPEG, GIF, BMP, WebP, TIFF). Errors name the path. */
export function loadImage(path: string, options: DecodeOptions = {}): DecodedImage {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new Error(`${path}: cannot read image file (${(e as Error).message})`);
  }
  return decodeImage(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path, options);
}

/** Encode an RGB image (or gray/gray+alpha/RGBA with `channels`) as PNG bytes. */
export function encodePng(image: RgbImage & { channels?: 1 | 2 | 3 | 4 }): Uint8Array {
  return encodePngPixels(image);
}

function toRgb(data: Uint8Array, pixels: number, channels: number): { rgb: Uint8Array; alpha?: Uint8Array } {
  if (channels === 3) return { rgb: data };
  const rgb = new Uint8Array(pixels * 3);
  const alpha = channels === 2 || channels === 4 ? new Uint8Array(pixels) : undefined;
  for (let i = 0; i < pixels; i++) {
    if (channels <= 2) {
      const g = data[i * channels];
      rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = g;
      if (alpha) alpha[i] = data[i * 2 + 1];
    } else {
      rgb[3 * i] = data[4 * i];
      rgb[3 * i + 1] = data[4 * i + 1];
      rgb[3 * i + 2] = data[4 * i + 2];
      alpha![i] = data[4 * i + 3];
    }
  }
  return { rgb, alpha };
}

/**
 * Rotate/flip pixels for an EXIF orientation (1..8), as PIL.ImageOps.exif_transpose:
 * 2 flip left-right, 3 rotate 180, 4 flip top-bottom, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
 */
export function applyOrientation(image: { width: number; height: number; data: Uint8Array }, orientation: number, channels = 3): { width: number; height: number; data: Uint8Array } {
  const { width: w, height: h, data } = image;
  if (orientation === 1) return { width: w, height: h, data };
  if (!Number.isInteger(orientation) || orientation < 1 || orientation > 8) throw new Error(`applyOrientation: EXIF orientation must be 1..8, got ${orientation}`);
  const swap = orientation >= 5;
  const ow = swap ? h : w, oh = swap ? w : h;
  const out = new Uint8Array(data.length);
  // For each output pixel (x, y), the source pixel (sx, sy).
  const source: Record<number, (x: number, y: number) => [number, number]> = {
    2: (x, y) => [w - 1 - x, y],
    3: (x, y) => [w - 1 - x, h - 1 - y],
    4: (x, y) => [x, h - 1 - y],
    5: (x, y) => [y, x],
    6: (x, y) => [y, h - 1 - x],
    7: (x, y) => [w - 1 - y, h - 1 - x],
    8: (x, y) => [w - 1 - y, x],
  };
  const map = source[orientation];
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const [sx, sy] = map(x, y);
      const from = (sy * w + sx) * channels, to = (y * ow + x) * channels;
      for (let c = 0; c < channels; c++) out[to + c] = data[from + c];
    }
  }
  return { width: ow, height: oh, data: out };
}

function checkImage(img: RgbImage, what: string): void {
  if (img.data.length !== img.width * img.height * 3) {
    throw new Error(`${what}: RgbImage data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3 = ${img.width * img.height * 3}`);
  }
}

export interface ImageToTensorOptions {
  /** "uint8" keeps 0..255 (default); "float32" scales to 0..1. */
  dtype?: "uint8" | "float32";
  device?: string;
}

/** An RGB image as a [3, H, W] tensor (channels first, as torchvision's pil_to_tensor / to_tensor). */
export function imageToTensor(img: RgbImage, options: ImageToTensorOptions = {}): Tensor {
  checkImage(img, "imageToTensor");
  const planar = new Uint8Array(img.data.length);
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    planar[i] = img.data[3 * i];
    planar[n + i] = img.data[3 * i + 1];
    planar[2 * n + i] = img.data[3 * i + 2];
  }
  const u8 = fromBuffer(planar, [3, img.height, img.width], "uint8");
  if ((options.dtype ?? "uint8") === "uint8") {
    if (!options.device || options.device === "cpu") return u8;
    const moved = u8.to(options.device);
    u8.dispose();
    return moved;
  }
  const asFloat = u8.to({ dtype: "float32", device: options.device });
  u8.dispose();
  const scaled = asFloat.div(255);
  asFloat.dispose();
  return scaled;
}

/** The inverse of imageToTensor for a [3, H, W] uint8 tensor (or float in 0..1, rounded and clamped). */
export function tensorToImage(t: Tensor): RgbImage {
  const [c, h, w] = t.shape;
  if (t.ndim !== 3 || c !== 3) throw new Error(`tensorToImage: expected a [3, H, W] tensor, got [${t.shape.join(", ")}]`);
  const raw = t.data(); // copies to host, contiguous
  const flat: ArrayLike<number> = t.dtype === "uint8" ? (raw as Uint8Array) : Float64Array.from(raw as ArrayLike<number>, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  const data = new Uint8Array(w * h * 3);
  const n = w * h;
  for (let i = 0; i < n; i++) {
    data[3 * i] = flat[i];
    data[3 * i + 1] = flat[n + i];
    data[3 * i + 2] = flat[2 * n + i];
  }
  return { width: w, height: h, data };
}
