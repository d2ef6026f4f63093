// CLIP configs from config.json with transformers' defaults (models/clip/configuration_clip.py): the text
// tower (clip_text_model), the vision tower (clip_vision_model) and the dual encoder (clip).
import { encoderLayersTerm, keyUse, type SizeTerm } from "../common/size_check.js";
import { ConfigReader, isJsonObject, type JsonObject } from "../common/config_reader.js";

export interface CLIPTextConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  projection_dim: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: string;
  layer_norm_eps: number;
  attention_dropout: number;
  pad_token_id: number | null;
  bos_token_id: number | null;
  /** The pooled token; 2 (old hub configs) selects the legacy highest-id rule. */
  eos_token_id: number | null;
}

export interface CLIPVisionConfig {
  model_type: string;
  hidden_size: number;
  intermediate_size: number;
  projection_dim: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: string;
  layer_norm_eps: number;
  attention_dropout: number;
}

export interface CLIPConfig {
  model_type: string;
  text_config: CLIPTextConfig;
  vision_config: CLIPVisionConfig;
  projection_dim: number;
  /** Initial value of logit_scale (log of the softmax temperature's inverse); the checkpoint holds the trained one. */
  logit_scale_init_value: number;
}

const asReader = (source: ConfigReader | JsonObject, file: string) => (source instanceof ConfigReader ? source : new ConfigReader(source, file));

/** A square size given as an int or as [h, w] with h == w (transformers' configs allow both spellings). */
export function squareSize(c: ConfigReader, key: string, fallback: number): number {
  if (!c.has(key)) return fallback;
  const value = c.raw[key];
  if (Array.isArray(value)) {
    const [height, width] = value as unknown[];
    if (value.length === 2 && typeof height === "number" && height === width && Number.isInteger(height) && height > 0) return height;
    throw new Error(`${c.file}: "${c.path ? c.path + "." : ""}${key}" must be one positive integer or a square [size, size], got ${JSON.stringify(value)}; CLIP-style towers have square position grids`);
  }
  return c.size(key, fallback);
}


/** The towers split hidden_size evenly over the heads (transformers' attention raises otherwise). */
export function checkHeads(c: ConfigReader, hiddenSize: number, numHeads: number): void {
  if (hiddenSize % numHeads !== 0) {
    throw new Error(`${c.file}: ${c.keyName("hidden_size")} (${hiddenSize}) must be divisible by ${c.keyName("num_attention_heads")} (${numHeads}); fix one of them`);
  }
}

/** eos_token_id may be an int or a list; the text tower pools on the first id of a list. */
function firstId(c: ConfigReader, key: string, fallback: number): number | null {
  if (!(key in c.raw)) return fallback;
  const ids = c.intOrIntList(key);
  return ids === null || ids.length === 0 ? null : ids[0];
}

export function parseCLIPTextConfig(source: ConfigReader | JsonObject, file = "config.json"): CLIPTextConfig {
  const c = asReader(source, file);
  const hiddenSize = c.size("hidden_size", 512);
  const numHeads = c.size("num_attention_heads", 8);
  checkHeads(c, hiddenSize, numHeads);
  return {
    model_type: c.string("model_type", "clip_text_model"),
    vocab_size: c.size("vocab_size", 49408),
    hidden_size: hiddenSize,
    intermediate_size: c.size("intermediate_size", 2048),
    projection_dim: c.size("projection_dim", 512),
    num_hidden_layers: c.layers("num_hidden_layers", 12),
    num_attention_heads: numHeads,
    max_position_embeddings: c.size("max_position_embeddings", 77),
    hidden_act: c.string("hidden_act", "quick_gelu"),
    layer_norm_eps: c.float("layer_norm_eps", 1e-5),
    attention_dropout: c.float("attention_dropout", 0),
    pad_token_id: "pad_token_id" in c.raw ? c.int("pad_token_id", null) : 1,
    bos_token_id: "bos_token_id" in c.raw ? c.int("bos_token_id", null) : 49406,
    eos_token_id: firstId(c, "eos_token_id", 49407),
  };
}

export function parseCLIPVisionConfig(source: ConfigReader | JsonObject, file = "config.json"): CLIPVisionConfig {
  const c = asReader(source, file);
  const hiddenSize = c.size("hidden_size", 768);
  const numHeads = c.size("num_attention_heads", 12);
  checkHeads(c, hiddenSize, numHeads);
  return {
    model_type: c.string("model_type", "clip_vision_model"),
    hidden_size: hiddenSize,
    intermediate_size: c.size("intermediate_size", 3072),
    projection_dim: c.size("projection_dim", 512),
    num_hidden_layers: c.layers("num_hidden_layers", 12),
    num_attention_heads: numHeads,
    num_channels: c.size("num_channels", 3),
    image_size: squareSize(c, "image_size", 224),
    patch_size: squareSize(c, "patch_size", 32),
    hidden_act: c.string("hidden_act", "quick_gelu"),
    layer_norm_eps: c.float("layer_norm_eps", 1e-5),
    attention_dropout: c.float("attention_dropout", 0),
  };
}

/**
 * The sub-config of a dual encoder: `<name>` merged with the legacy `<name>_dict` spelling of old hub files
 * (whose values win, as in transformers).
 */
export function subConfig(c: ConfigReader, name: string): JsonObject {
  const base = c.has(name) ? c.object(name)!.raw : {};
  const legacy = c.raw[`${name}_dict`];
  return isJsonObject(legacy) ? { ...base, ...legacy } : base;
}

export function parseCLIPConfig(source: ConfigReader | JsonObject, file = "config.json"): CLIPConfig {
  const c = asReader(source, file);
  return {
    model_type: c.string("model_type", "clip"),
    text_config: parseCLIPTextConfig(new ConfigReader(subConfig(c, "text_config"), c.file, "text_config")),
    vision_config: parseCLIPVisionConfig(new ConfigReader(subConfig(c, "vision_config"), c.file, "vision_config")),
    projection_dim: c.size("projection_dim", 512),
    logit_scale_init_value: c.float("logit_scale_init_value", 2.6592),
  };
}

/** Parameters of a CLIP or SigLIP text tower by part: token and position embeddings, layers. */
export function textTowerTerms(c: ConfigReader, s: { vocab_size: number; hidden_size: number; intermediate_size: number; num_hidden_layers: number; max_position_embeddings: number }): SizeTerm[] {
  return [
    { what: `${c.path || "the"} token embeddings`, params: (s.vocab_size + s.max_position_embeddings) * s.hidden_size, keys: [keyUse(c, "vocab_size", s.vocab_size), keyUse(c, "hidden_size", s.hidden_size)] },
    encoderLayersTerm(c, s),
  ];
}

/** Parameters of a CLIP or SigLIP vision tower by part: patch and position embeddings, layers. */
export function visionTowerTerms(c: ConfigReader, s: { hidden_size: number; intermediate_size: number; num_hidden_layers: number; num_channels: number; image_size: number; patch_size: number }): SizeTerm[] {
  const patches = (s.image_size / s.patch_size) ** 2 + 1;
  return [
    {
      what: `${c.path || "the"} patch embeddings`,
      params: (s.num_channels * s.patch_size * s.patch_size + patches) * s.hidden_size,
      keys: [keyUse(c, "image_size", s.image_size), keyUse(c, "patch_size", s.patch_size), keyUse(c, "hidden_size", s.hidden_size)],
    },
    encoderLayersTerm(c, s),
  ];
}

const sub = (c: ConfigReader, name: string) => new ConfigReader(subConfig(c, name), c.file, name);

export const clipTextSizeTerms = (c: ConfigReader): SizeTerm[] => textTowerTerms(c, parseCLIPTextConfig(c));
export const clipVisionSizeTerms = (c: ConfigReader): SizeTerm[] => visionTowerTerms(c, parseCLIPVisionConfig(c));
export const clipSizeTerms = (c: ConfigReader): SizeTerm[] => [...clipTextSizeTerms(sub(c, "text_config")), ...clipVisionSizeTerms(sub(c, "vision_config"))];
