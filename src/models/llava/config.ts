// LlavaConfig from config.json with transformers' defaults (models/llava/configuration_llava.py).
import { ConfigReader, isJsonObject, type JsonObject } from "../common/config_reader.js";
import { parseCLIPVisionConfig, type CLIPVisionConfig } from "../clip/config.js";
import { parseSiglipVisionConfig, siglipVisionSizeTerms, type SiglipVisionConfig } from "../siglip/config.js";
import { clipVisionSizeTerms } from "../clip/config.js";
import { estimateParameters, type SizeTerm } from "../common/size_check.js";

/** The vision towers LLaVA can use, by vision_config.model_type. */
export type LlavaVisionConfig = CLIPVisionConfig | SiglipVisionConfig;

export type VisionFeatureSelectStrategy = "default" | "full";

export interface LlavaConfig {
  model_type: string;
  vision_config: LlavaVisionConfig;
  /** The language model's config as written (built by its own model_type, "llama" by default). */
  text_config: ConfigReader;
  /** Placeholder token replaced by image features (config key image_token_index, alias image_token_id). */
  image_token_id: number;
  /** Placeholder tokens per image that the processor writes (informational; the model counts them). */
  image_seq_length: number;
  projector_hidden_act: string;
  /** "default" drops the first (class) token of each selected layer, "full" keeps every token. */
  vision_feature_select_strategy: VisionFeatureSelectStrategy;
  /** Index into the tower's hidden states (negative from the end), or several whose features are concatenated. */
  vision_feature_layer: number | number[];
  multimodal_projector_bias: boolean;
  /** lm_head shares the input embedding matrix (top-level or text_config's flag, as transformers merges them). */
  tie_word_embeddings: boolean;
  /** The language model's end and padding ids (text_config's, else the top level's), for generate(). */
  eos_token_id: number[] | null;
  pad_token_id: number | null;
}

// transformers' default tower when vision_config is absent: the CLIP ViT-L/14-336 of llava-1.5.
const DEFAULT_VISION: JsonObject = {
  model_type: "clip_vision_model", intermediate_size: 4096, hidden_size: 1024, patch_size: 14, image_size: 336,
  num_hidden_layers: 24, num_attention_heads: 16, projection_dim: 768,
};

// transformers' vocab_size of the language models LLaVA configs name, for an absent text_config.vocab_size.
const TEXT_VOCAB_DEFAULTS: Record<string, number | undefined> = { llama: 32000, qwen2: 151936 };

/** The vision config by its model_type (clip_vision_model when absent). */
export function parseVisionTowerConfig(c: ConfigReader): LlavaVisionConfig {
  const modelType = c.string("model_type", "clip_vision_model");
  if (modelType === "clip_vision_model") return parseCLIPVisionConfig(c);
  if (modelType === "siglip_vision_model") return parseSiglipVisionConfig(c);
  throw new Error(`${c.file}: vision_config.model_type "${modelType}" is not supported as a LLaVA vision tower; supported: clip_vision_model, siglip_vision_model`);
}

function featureLayer(c: ConfigReader): number | number[] {
  if (!c.has("vision_feature_layer")) return -2;
  const value = c.raw.vision_feature_layer;
  if (typeof value === "number" && Number.isInteger(value)) return value;
  if (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === "number" && Number.isInteger(v))) return value as number[];
  throw new Error(`${c.file}: "vision_feature_layer" must be an integer or a non-empty list of integers, got ${JSON.stringify(value)}`);
}

export function parseLlavaConfig(source: ConfigReader | JsonObject, file = "config.json"): LlavaConfig {
  const c = source instanceof ConfigReader ? source : new ConfigReader(source, file);
  const visionRaw = c.has("vision_config") ? c.object("vision_config")!.raw : DEFAULT_VISION;
  const vision = parseVisionTowerConfig(new ConfigReader({ model_type: "clip_vision_model", ...visionRaw }, c.file, "vision_config"));
  const textRaw = c.has("text_config") ? c.object("text_config")!.raw : {};
  const text = new ConfigReader({ model_type: "llama", ...textRaw }, c.file, "text_config");
  const imageTokenId = c.has("image_token_index") ? c.int("image_token_index", 32000) : c.int("image_token_id", 32000);
  // The placeholder id must be a row of the embedding matrix, or no prompt can hold an image.
  const vocabKey = text.keyName("vocab_size");
  const vocabSize = text.has("vocab_size") ? text.size("vocab_size", 0) : TEXT_VOCAB_DEFAULTS[text.string("model_type", "llama")];
  if (vocabSize !== undefined && (imageTokenId < 0 || imageTokenId >= vocabSize)) {
    const tokenKey = c.has("image_token_index") ? "image_token_index" : "image_token_id";
    throw new Error(
      `${c.file}: ${tokenKey} (${imageTokenId}) is outside the language model's vocabulary (${vocabKey} ${vocabSize}${text.has("vocab_size") ? "" : ", transformers' default"}); ` +
        `the image token must be an id below ${vocabKey}: fix ${tokenKey} or ${vocabKey} in ${c.file}`,
    );
  }
  const textTies = isJsonObject(textRaw) && textRaw.tie_word_embeddings === true;
  return {
    model_type: c.string("model_type", "llava"),
    vision_config: vision,
    text_config: text,
    image_token_id: imageTokenId,
    image_seq_length: c.size("image_seq_length", 576),
    projector_hidden_act: c.string("projector_hidden_act", "gelu"),
    vision_feature_select_strategy: c.choice("vision_feature_select_strategy", ["default", "full"] as const, "default"),
    vision_feature_layer: featureLayer(c),
    multimodal_projector_bias: c.bool("multimodal_projector_bias", true),
    tie_word_embeddings: c.bool("tie_word_embeddings", false) || textTies,
    eos_token_id: text.intOrIntList("eos_token_id") ?? c.intOrIntList("eos_token_id"),
    pad_token_id: text.int("pad_token_id", null) ?? c.int("pad_token_id", null),
  };
}

/** Parameters of a LLaVA config by part (vision tower, projector, language model) for the size check. */
export function llavaSizeTerms(c: ConfigReader): SizeTerm[] {
  const config = parseLlavaConfig(c);
  const vision = config.vision_config;
  const visionReader = new ConfigReader({ model_type: "clip_vision_model", ...(c.has("vision_config") ? c.object("vision_config")!.raw : DEFAULT_VISION) }, c.file, "vision_config");
  const visionTerms = vision.model_type === "siglip_vision_model" ? siglipVisionSizeTerms(visionReader) : clipVisionSizeTerms(visionReader);
  const textTerms = estimateParameters(config.text_config) ?? [];
  if (!c.has("text_config") && textTerms.length > 0) {
    textTerms[0].note = `${c.file} has no text_config, so the language model is transformers' default (a 7B Llama: hidden_size 4096, 32 layers, vocab_size 32000); give text_config with your language model's sizes`;
  }
  const textHidden = config.text_config.has("hidden_size") ? config.text_config.size("hidden_size", 1) : 4096;
  const layers = Array.isArray(config.vision_feature_layer) ? config.vision_feature_layer.length : 1;
  const projector: SizeTerm = { what: "multi_modal_projector", params: vision.hidden_size * layers * textHidden + textHidden * textHidden, keys: [] };
  return [...visionTerms, projector, ...textTerms];
}
