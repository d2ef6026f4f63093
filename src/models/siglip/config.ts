// SigLIP configs from config.json with transformers' defaults (models/siglip/configuration_siglip.py).
import { ConfigReader, type JsonObject } from "../common/config_reader.js";
import { checkHeads, squareSize, subConfig, textTowerTerms, visionTowerTerms } from "../clip/config.js";
import type { SizeTerm } from "../common/size_check.js";

export interface SiglipTextConfig {
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  max_position_embeddings: number;
  hidden_act: string;
  layer_norm_eps: number;
  attention_dropout: number;
  /** Output size of the text head (defaults to hidden_size). */
  projection_size: number;
  pad_token_id: number | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
}

export interface SiglipVisionConfig {
  model_type: string;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_channels: number;
  image_size: number;
  patch_size: number;
  hidden_act: string;
  layer_norm_eps: number;
  attention_dropout: number;
  /** Whether the tower has the attention-pooling head (absent in the config = true). */
  vision_use_head: boolean;
}

export interface SiglipConfig {
  model_type: string;
  text_config: SiglipTextConfig;
  vision_config: SiglipVisionConfig;
}

const asReader = (source: ConfigReader | JsonObject, file: string) => (source instanceof ConfigReader ? source : new ConfigReader(source, file));

export function parseSiglipTextConfig(source: ConfigReader | JsonObject, file = "config.json"): SiglipTextConfig {
  const c = asReader(source, file);
  const hiddenSize = c.size("hidden_size", 768);
  const numHeads = c.size("num_attention_heads", 12);
  checkHeads(c, hiddenSize, numHeads);
  const eos = "eos_token_id" in c.raw ? c.intOrIntList("eos_token_id") : [49407];
  return {
    model_type: c.string("model_type", "siglip_text_model"),
    vocab_size: c.size("vocab_size", 32000),
    hidden_size: hiddenSize,
    intermediate_size: c.size("intermediate_size", 3072),
    num_hidden_layers: c.layers("num_hidden_layers", 12),
    num_attention_heads: numHeads,
    max_position_embeddings: c.size("max_position_embeddings", 64),
    hidden_act: c.string("hidden_act", "gelu_pytorch_tanh"),
    layer_norm_eps: c.float("layer_norm_eps", 1e-6),
    attention_dropout: c.float("attention_dropout", 0),
    projection_size: c.size("projection_size", hiddenSize, { nullable: true }),
    pad_token_id: "pad_token_id" in c.raw ? c.int("pad_token_id", null) : 1,
    bos_token_id: "bos_token_id" in c.raw ? c.int("bos_token_id", null) : 49406,
    eos_token_id: eos && eos.length > 0 ? eos[0] : null,
  };
}

export function parseSiglipVisionConfig(source: ConfigReader | JsonObject, file = "config.json"): SiglipVisionConfig {
  const c = asReader(source, file);
  const hiddenSize = c.size("hidden_size", 768);
  const numHeads = c.size("num_attention_heads", 12);
  checkHeads(c, hiddenSize, numHeads);
  return {
    model_type: c.string("model_type", "siglip_vision_model"),
    hidden_size: hiddenSize,
    intermediate_size: c.size("intermediate_size", 3072),
    num_hidden_layers: c.layers("num_hidden_layers", 12),
    num_attention_heads: numHeads,
    num_channels: c.size("num_channels", 3),
    image_size: squareSize(c, "image_size", 224),
    patch_size: squareSize(c, "patch_size", 16),
    hidden_act: c.string("hidden_act", "gelu_pytorch_tanh"),
    layer_norm_eps: c.float("layer_norm_eps", 1e-6),
    attention_dropout: c.float("attention_dropout", 0),
    vision_use_head: c.bool("vision_use_head", true),
  };
}

export function parseSiglipConfig(source: ConfigReader | JsonObject, file = "config.json"): SiglipConfig {
  const c = asReader(source, file);
  return {
    model_type: c.string("model_type", "siglip"),
    text_config: parseSiglipTextConfig(new ConfigReader(subConfig(c, "text_config"), c.file, "text_config")),
    vision_config: parseSiglipVisionConfig(new ConfigReader(subConfig(c, "vision_config"), c.file, "vision_config")),
  };
}

const sub = (c: ConfigReader, name: string) => new ConfigReader(subConfig(c, name), c.file, name);

export const siglipTextSizeTerms = (c: ConfigReader): SizeTerm[] => textTowerTerms(c, parseSiglipTextConfig(c));
export const siglipVisionSizeTerms = (c: ConfigReader): SizeTerm[] => visionTowerTerms(c, parseSiglipVisionConfig(c));
export const siglipSizeTerms = (c: ConfigReader): SizeTerm[] => [...siglipTextSizeTerms(sub(c, "text_config")), ...siglipVisionSizeTerms(sub(c, "vision_config"))];
