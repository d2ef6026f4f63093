// Resizing and cropping 8-bit RGB images exactly as the two transformers image-processor backends do.
//
// Both backends resize uint8 -> uint8 with a separable, antialiased filter (the filter widens by the downscale
// factor), horizontal pass first, each pass rounding back to uint8 with fixed-point integer weights:
// - "pil": Pillow's Image.resize (libImaging/Resample.c): weights scaled by 2^22 (PRECISION_BITS = 32 - 8 - 2).
// - "torchvision": torchvision.transforms.v2.functional.resize on a uint8 tensor, which for bicubic on CPU calls
//   torch's native uint8 antialiased kernel (aten/src/ATen/native/cpu/UpSampleKernel.cpp,
//   _compute_index_ranges_int16_weights): int16 weights with the largest precision <= 22 bits that keeps the
//   biggest weight below 2^15.
// Resampling in float and rounding once would differ from both by one level in some pixels, which after CLIP's
// normalisation (std ~0.27) is ~0.015: more than the 1e-2 parity tolerance. So we reproduce the integer arithmetic.
import type { RgbImage } from "./image.js";

export type ResampleFilter = "bicubic" | "bilinear";
export type ResampleBackend = "torchvision" | "pil";

export interface ResizeOptions {
  filter?: ResampleFilter;
  backend?: ResampleBackend;
}

const SUPPORT: Record<ResampleFilter, number> = { bilinear: 1, bicubic: 2 };

// Filters as each library writes them (same maths, floating-point order kept so weights match bit for bit).
function filterFunction(filter: ResampleFilter, backend: ResampleBackend): (x: number) => number {
  if (filter === "bilinear") {
    return (x) => {
      x = Math.abs(x);
      return x < 1 ? 1 - x : 0;
    };
  }
  const a = -0.5; // Keys' cubic with a = -0.5: Pillow's BICUBIC, and torch's antialiased bicubic (for PIL parity)
  if (backend === "pil") {
    return (x) => {
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    };
  }
  return (x) => {
    x = Math.abs(x);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
  };
}

/** Per output index: first input index, tap count, and fixed-point weights (ksize per output). */
export interface AxisWeights {
  first: Int32Array;
  count: Int32Array;
  ksize: number;
  weights: Int32Array;
  precision: number;
  /** The normalised float weights before quantisation (for tests and float references). */
  floatWeights: Float64Array;
}

/** Antialiased resampling weights along one axis of inSize -> outSize samples. */
export function axisWeights(inSize: number, outSize: number, filter: ResampleFilter = "bicubic", backend: ResampleBackend = "torchvision"): AxisWeights {
  const fn = filterFunction(filter, backend);
  const scale = inSize / outSize;
  const filterScale = scale >= 1 ? scale : 1;
  const support = SUPPORT[filter] * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const inverse = 1 / filterScale;
  const first = new Int32Array(outSize), count = new Int32Array(outSize);
  const floatWeights = new Float64Array(outSize * ksize);
  let maxWeight = 0;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // C casts to int truncate toward zero; negative starts are then clamped to 0.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - xmin, 0), ksize);
    let total = 0;
    for (let j = 0; j < xsize; j++) {
      const w = fn((j + xmin - center + 0.5) * inverse);
      floatWeights[i * ksize + j] = w;
      total += w;
    }
    if (total !== 0) {
      for (let j = 0; j < xsize; j++) {
        floatWeights[i * ksize + j] /= total;
        maxWeight = Math.max(maxWeight, floatWeights[i * ksize + j]);
      }
    }
    first[i] = xmin;
    count[i] = xsize;
  }
  let precision = 22;
  if (backend === "torchvision") {
    for (precision = 0; precision < 22; precision++) {
      if (Math.trunc(0.5 + maxWeight * 2 ** (precision + 1)) >= 1 << 15) break;
    }
  }
  const weights = new Int32Array(outSize * ksize);
  const unit = 2 ** precision;
  for (let k = 0; k < weights.length; k++) {
    const v = floatWeights[k] * unit;
    weights[k] = v < 0 ? Math.trunc(-0.5 + v) : Math.trunc(0.5 + v);
  }
  return { first, count, ksize, weights, precision, floatWeights };
}

/** Resize an RGB image to width x height (uint8 -> uint8), bit-exact with the chosen backend. */
export function resizeImage(img: RgbImage, width: number, height: number, options: ResizeOptions = {}): RgbImage {
  const filter = options.filter ?? "bicubic", backend = options.backend ?? "torchvision";
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`resizeImage: target size must be positive integers, got ${width}x${height}`);
  }
  if (img.data.length !== img.width * img.height * 3) throw new Error(`resizeImage: image data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3`);
  let current = img;
  if (width !== img.width) current = resampleRows(current, width, axisWeights(img.width, width, filter, backend));
  if (height !== img.height) current = resampleColumns(current, height, axisWeights(img.height, height, filter, backend));
  return current === img ? { width: img.width, height: img.height, data: img.data.slice() } : current;
}

function resampleRows(img: RgbImage, outWidth: number, w: AxisWeights): RgbImage {
  const { width: inWidth, height, data } = img;
  const out = new Uint8Array(outWidth * height * 3);
  const half = 2 ** (w.precision - 1), shift = w.precision;
  for (let y = 0; y < height; y++) {
    const rowIn = y * inWidth * 3, rowOut = y * outWidth * 3;
    for (let x = 0; x < outWidth; x++) {
      const start = w.first[x], n = w.count[x], k = x * w.ksize;
      let r = half, g = half, b = half;
      for (let j = 0; j < n; j++) {
        const p = rowIn + (start + j) * 3, c = w.weights[k + j];
        r += data[p] * c;
        g += data[p + 1] * c;
        b += data[p + 2] * c;
      }
      const o = rowOut + x * 3;
      out[o] = clip8(r >> shift);
      out[o + 1] = clip8(g >> shift);
      out[o + 2] = clip8(b >> shift);
    }
  }
  return { width: outWidth, height, data: out };
}

function resampleColumns(img: RgbImage, outHeight: number, w: AxisWeights): RgbImage {
  const { width, data } = img;
  const rowBytes = width * 3;
  const out = new Uint8Array(width * outHeight * 3);
  const half = 2 ** (w.precision - 1), shift = w.precision;
  for (let y = 0; y < outHeight; y++) {
    const start = w.first[y], n = w.count[y], k = y * w.ksize;
    for (let i = 0; i < rowBytes; i++) {
      let s = half;
      for (let j = 0; j < n; j++) s += data[(start + j) * rowBytes + i] * w.weights[k + j];
      out[y * rowBytes + i] = clip8(s >> shift);
    }
  }
  return { width, height: outHeight, data: out };
}

const clip8 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * Center crop to width x height; where the image is smaller it is padded with zeros first, as each backend pads
 * (torchvision puts the odd pixel of padding after the image, transformers' numpy center_crop before it).
 */
export function centerCrop(img: RgbImage, width: number, height: number, backend: ResampleBackend = "torchvision"): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new Error(`centerCrop: crop size must be positive integers, got ${width}x${height}`);
  }
  let src = img;
  if (width > img.width || height > img.height) {
    const padW = Math.max(width - img.width, 0), padH = Math.max(height - img.height, 0);
    const left = backend === "torchvision" ? Math.floor(padW / 2) : Math.ceil(padW / 2);
    const top = backend === "torchvision" ? Math.floor(padH / 2) : Math.ceil(padH / 2);
    const pw = img.width + padW, ph = img.height + padH;
    const padded = new Uint8Array(pw * ph * 3);
    for (let y = 0; y < img.height; y++) padded.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((y + top) * pw + left) * 3);
    src = { width: pw, height: ph, data: padded };
  }
  // Both backends start the crop at floor((size - crop) / 2).
  const top = Math.floor((src.height - height) / 2), left = Math.floor((src.width - width) / 2);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((y + top) * src.width + left) * 3;
    out.set(src.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, data: out };
}

/** transformers' get_resize_output_image_size(default_to_square=False): (height, width) with the short side = size. */
export function shortestEdgeSize(width: number, height: number, shortestEdge: number): { width: number; height: number } {
  const short = Math.min(width, height), long = Math.max(width, height);
  const newLong = Math.trunc((shortestEdge * long) / short); // Python int() of a float: truncation
  return width <= height ? { width: shortestEdge, height: newLong } : { width: newLong, height: shortestEdge };
}
