// Image processors read from a Hugging Face preprocessor_config.json, reproducing transformers' pixel_values.
//
// Which transformers class runs: in transformers 5, AutoImageProcessor.from_pretrained resolves the backend with
// models/auto/image_processing_auto.py:_resolve_backend(): "torchvision" whenever torchvision is installed (only the
// Lanczos processors Chameleon/Flava/Idefics3/SmolVLM default to "pil"), else "pil". For image_processor_type
// "CLIPImageProcessor" / "SiglipImageProcessor" the torchvision class is CLIPImageProcessor / SiglipImageProcessor
// (image_processing_backends.TorchvisionBackend; the old *Fast names map to it too) and the PIL class
// CLIPImageProcessorPil / SiglipImageProcessorPil (PilBackend). So the default here is backend "torchvision";
// pass { backend: "pil" } to match backend="pil" (or transformers 4's slow processors).
//
// TorchvisionBackend._preprocess: PIL image -> uint8 [3,H,W] -> resize (tvF.resize, uint8 antialiased bicubic on CPU)
//   -> center_crop (top = int((H - h) / 2)) -> float32, then normalize with mean/rescale and std/rescale fused
//   ((x - mean*255) / (std*255) in float32).
// PilBackend._preprocess: numpy uint8 -> resize (PIL Image.resize) -> center_crop -> rescale (float64 * 1/255 ->
//   float32) -> normalize ((x - mean) / std in float32).
// Both: do_convert_rgb is PIL's convert("RGB") (our decoders already give RGB); CLIP resizes the shortest edge to
// size.shortest_edge (long edge int(size * long / short)), SigLIP to size.height x size.width.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fromBuffer } from "../torch/creation.js";
import type { Tensor } from "../torch/tensor.js";
import type { RgbImage } from "./image.js";
import { centerCrop, resizeImage, shortestEdgeSize, type ResampleBackend, type ResampleFilter } from "./resample.js";

export type ImageProcessorBackend = ResampleBackend;

export interface SizeSpec {
  shortestEdge?: number;
  longestEdge?: number;
  height?: number;
  width?: number;
}

export interface ImageProcessorConfig {
  /** The transformers class family this config describes. */
  kind: "clip" | "siglip";
  imageProcessorType: string;
  doConvertRgb: boolean;
  doResize: boolean;
  size: SizeSpec;
  resample: ResampleFilter;
  doCenterCrop: boolean;
  cropSize: { height: number; width: number } | null;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: number[];
  imageStd: number[];
}

export interface ImageProcessorOptions {
  /** "torchvision" (transformers 5's default when torchvision is installed) or "pil". */
  backend?: ImageProcessorBackend;
}

const OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711];
const IMAGENET_STANDARD_MEAN = [0.5, 0.5, 0.5];
const IMAGENET_STANDARD_STD = [0.5, 0.5, 0.5];

// Class defaults, from transformers' models/clip/image_processing_clip.py and models/siglip/image_processing_siglip.py.
const CLASS_DEFAULTS: Record<"clip" | "siglip", Omit<ImageProcessorConfig, "kind" | "imageProcessorType">> = {
  clip: {
    doConvertRgb: true, doResize: true, size: { shortestEdge: 224 }, resample: "bicubic", doCenterCrop: true,
    cropSize: { height: 224, width: 224 }, doRescale: true, rescaleFactor: 1 / 255, doNormalize: true,
    imageMean: OPENAI_CLIP_MEAN, imageStd: OPENAI_CLIP_STD,
  },
  siglip: {
    doConvertRgb: true, doResize: true, size: { height: 224, width: 224 }, resample: "bicubic", doCenterCrop: false,
    cropSize: null, doRescale: true, rescaleFactor: 1 / 255, doNormalize: true,
    imageMean: IMAGENET_STANDARD_MEAN, imageStd: IMAGENET_STANDARD_STD,
  },
};

// image_processor_type (or legacy feature_extractor_type) -> family. The *Fast names are transformers 4's
// torchvision classes; transformers 5 maps them to the same torchvision backend.
const KNOWN_TYPES: Record<string, "clip" | "siglip"> = {
  CLIPImageProcessor: "clip", CLIPImageProcessorFast: "clip", CLIPImageProcessorPil: "clip", CLIPFeatureExtractor: "clip",
  SiglipImageProcessor: "siglip", SiglipImageProcessorFast: "siglip", SiglipImageProcessorPil: "siglip",
};

// PIL resampling codes as stored in the JSON ("resample": 3).
const RESAMPLE_CODES: Record<number, ResampleFilter | string> = { 0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming" };

export class ImageProcessor {
  readonly config: ImageProcessorConfig;
  readonly backend: ImageProcessorBackend;

  constructor(config: ImageProcessorConfig, options: ImageProcessorOptions = {}) {
    this.config = config;
    // A "...Pil" type name (not written by save_pretrained, but accepted) asks for the PIL backend explicitly.
    this.backend = options.backend ?? (config.imageProcessorType.endsWith("Pil") ? "pil" : "torchvision");
  }

  /** Read `preprocessor_config.json` from a model folder and build the matching processor. */
  static fromFolder(dir: string, options: ImageProcessorOptions = {}): ImageProcessor {
    const path = join(dir, "preprocessor_config.json");
    if (!existsSync(path)) throw new Error(`${dir}: no preprocessor_config.json in this folder (is it a Hugging Face model folder with an image processor?)`);
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(path, "utf8"));
    } catch (e) {
      throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
    }
    return ImageProcessor.fromConfig(json as Record<string, unknown>, options, path);
  }

  /** Build from the parsed JSON of a preprocessor_config.json; `source` names it in errors. */
  static fromConfig(json: Record<string, unknown>, options: ImageProcessorOptions = {}, source = "preprocessor_config.json"): ImageProcessor {
    return new ImageProcessor(parseImageProcessorConfig(json, source), options);
  }

  /** The final [3, H, W] size this processor gives an image of the given size. */
  outputSize(width: number, height: number): { width: number; height: number } {
    const c = this.config;
    let size = { width, height };
    if (c.doResize) size = this.resizeTarget(width, height);
    if (c.doCenterCrop && c.cropSize) size = { width: c.cropSize.width, height: c.cropSize.height };
    return size;
  }

  private resizeTarget(width: number, height: number): { width: number; height: number } {
    const s = this.config.size;
    if (s.shortestEdge !== undefined) return shortestEdgeSize(width, height, s.shortestEdge);
    return { width: s.width!, height: s.height! };
  }

  /** Resize and crop one image (the uint8 part of the pipeline). */
  transformImage(img: RgbImage): RgbImage {
    const c = this.config;
    let current = img;
    if (c.doResize) {
      const target = this.resizeTarget(img.width, img.height);
      current = resizeImage(current, target.width, target.height, { filter: c.resample, backend: this.backend });
    }
    if (c.doCenterCrop && c.cropSize) current = centerCrop(current, c.cropSize.width, c.cropSize.height, this.backend);
    return current;
  }

  /** One image as float32 [3, H, W] values (channels first), rescaled and normalised as the backend does. */
  pixelValues(img: RgbImage): { width: number; height: number; data: Float32Array } {
    if (img.data.length !== img.width * img.height * 3) throw new Error(`ImageProcessor: image data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3`);
    const c = this.config;
    const t = this.transformImage(img);
    const n = t.width * t.height;
    const out = new Float32Array(3 * n);
    const f = Math.fround;
    for (let ch = 0; ch < 3; ch++) {
      let map: (x: number) => number;
      if (this.backend === "torchvision") {
        if (c.doRescale && c.doNormalize) {
          // _fuse_mean_std_and_rescale_factor: float32 mean/std tensors times (1 / rescale_factor), then (x - m) / s
          const m = f(f(c.imageMean[ch]) * f(1 / c.rescaleFactor)), s = f(f(c.imageStd[ch]) * f(1 / c.rescaleFactor));
          map = (x) => f(f(x - m) / s);
        } else if (c.doNormalize) {
          const m = f(c.imageMean[ch]), s = f(c.imageStd[ch]);
          map = (x) => f(f(x - m) / s);
        } else if (c.doRescale) {
          const r = f(c.rescaleFactor);
          map = (x) => f(x * r);
        } else map = (x) => x;
      } else {
        const m = f(c.imageMean[ch]), s = f(c.imageStd[ch]);
        const rescale = c.doRescale ? (x: number) => f(x * c.rescaleFactor) : (x: number) => x; // float64 product, stored float32
        map = c.doNormalize ? (x) => f(f(rescale(x) - m) / s) : rescale;
      }
      for (let i = 0; i < n; i++) out[ch * n + i] = map(t.data[3 * i + ch]);
    }
    return { width: t.width, height: t.height, data: out };
  }

  /** transformers' processor(images, return_tensors="pt"): float32 pixel_values [N, 3, H, W]. */
  preprocess(images: RgbImage[], options: { device?: string } = {}): { pixel_values: Tensor } {
    if (images.length === 0) throw new Error("ImageProcessor.preprocess: no images given");
    const processed = images.map((img) => this.pixelValues(img));
    const { width, height } = processed[0];
    const mismatch = processed.findIndex((p) => p.width !== width || p.height !== height);
    if (mismatch >= 0) {
      throw new Error(
        `ImageProcessor.preprocess: image ${mismatch} comes out ${processed[mismatch].width}x${processed[mismatch].height} but image 0 ${width}x${height}; ` +
          "a batch needs one size (enable do_center_crop or use a fixed size)",
      );
    }
    const per = 3 * width * height;
    const batch = new Float32Array(per * processed.length);
    processed.forEach((p, i) => batch.set(p.data, i * per));
    return { pixel_values: fromBuffer(batch, [processed.length, 3, height, width], "float32", { device: options.device }) };
  }
}

/** Parse and validate a preprocessor_config.json into an ImageProcessorConfig (class defaults fill missing keys). */
export function parseImageProcessorConfig(json: Record<string, unknown>, source = "preprocessor_config.json"): ImageProcessorConfig {
  const typeName = (json.image_processor_type ?? (typeof json.feature_extractor_type === "string" ? json.feature_extractor_type : undefined)) as string | undefined;
  if (typeof typeName !== "string") {
    throw new Error(`${source}: no "image_processor_type" key; supported types: ${Object.keys(KNOWN_TYPES).join(", ")}`);
  }
  const kind = KNOWN_TYPES[typeName];
  if (!kind) throw new Error(`${source}: image_processor_type "${typeName}" is not supported; supported: ${Object.keys(KNOWN_TYPES).join(", ")}`);
  const d = CLASS_DEFAULTS[kind];
  const bool = (key: string, fallback: boolean) => {
    const v = json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "boolean") throw new Error(`${source}: "${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const num = (key: string, fallback: number) => {
    const v = json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`${source}: "${key}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const triple = (key: string, fallback: number[]) => {
    const v = json[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v === "number") return [v, v, v];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === "number")) throw new Error(`${source}: "${key}" must be a number or 3 numbers, got ${JSON.stringify(v)}`);
    return v as number[];
  };
  const resampleCode = num("resample", 3);
  const resample = RESAMPLE_CODES[resampleCode];
  if (resample !== "bicubic" && resample !== "bilinear") {
    throw new Error(`${source}: "resample": ${resampleCode} (${resample ?? "unknown"}) is not supported; use 3 (bicubic) or 2 (bilinear)`);
  }
  const size = json.size === undefined || json.size === null ? d.size : parseSize(json.size, source, "size");
  const doResize = bool("do_resize", d.doResize);
  if (doResize && size.shortestEdge === undefined && (size.height === undefined || size.width === undefined)) {
    throw new Error(`${source}: "size" ${JSON.stringify(json.size)} needs "shortest_edge" or both "height" and "width"`);
  }
  if (size.shortestEdge !== undefined && size.longestEdge !== undefined) {
    throw new Error(`${source}: "size" with both shortest_edge and longest_edge is not supported yet`);
  }
  const doCenterCrop = bool("do_center_crop", d.doCenterCrop);
  let cropSize = d.cropSize;
  if (json.crop_size !== undefined && json.crop_size !== null) {
    const c = parseSize(json.crop_size, source, "crop_size", true);
    if (c.height === undefined || c.width === undefined) throw new Error(`${source}: "crop_size" needs "height" and "width", got ${JSON.stringify(json.crop_size)}`);
    cropSize = { height: c.height, width: c.width };
  }
  if (doCenterCrop && !cropSize) throw new Error(`${source}: "do_center_crop" is true but there is no "crop_size"`);
  const imageStd = triple("image_std", d.imageStd);
  if (imageStd.some((s) => s === 0)) throw new Error(`${source}: "image_std" contains 0`);
  return {
    kind, imageProcessorType: typeName,
    doConvertRgb: bool("do_convert_rgb", d.doConvertRgb),
    doResize, size, resample, doCenterCrop, cropSize,
    doRescale: bool("do_rescale", d.doRescale),
    rescaleFactor: num("rescale_factor", d.rescaleFactor),
    doNormalize: bool("do_normalize", d.doNormalize),
    imageMean: triple("image_mean", d.imageMean),
    imageStd,
  };
}

// transformers' get_size_dict: an int means a square for crop sizes, the shortest edge for CLIP/SigLIP sizes
// (default_to_square=False in both classes).
function parseSize(value: unknown, source: string, key: string, square = false): SizeSpec {
  const positiveInt = (v: unknown, what: string) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) throw new Error(`${source}: "${key}.${what}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  if (typeof value === "number") {
    const n = positiveInt(value, "");
    return square ? { height: n, width: n } : { shortestEdge: n };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error(`${source}: "${key}" must be an integer or an object, got ${JSON.stringify(value)}`);
  const o = value as Record<string, unknown>;
  const spec: SizeSpec = {};
  for (const [k, v] of Object.entries(o)) {
    if (v === null) continue;
    if (k === "shortest_edge") spec.shortestEdge = positiveInt(v, k);
    else if (k === "longest_edge") spec.longestEdge = positiveInt(v, k);
    else if (k === "height") spec.height = positiveInt(v, k);
    else if (k === "width") spec.width = positiveInt(v, k);
    else throw new Error(`${source}: "${key}" has unsupported key "${k}" (supported: shortest_edge, height, width)`);
  }
  return spec;
}
