// Qwen2Config from config.json, with transformers' defaults (models/qwen2/configuration_qwen2.py).
import { ConfigReader, type JsonObject } from "../common/config_reader.js";
import { decoderTerms, type DecoderSizes, type SizeTerm } from "../common/size_check.js";
import { readRopeParameters, type RopeParameters } from "../common/rotary.js";

export type Qwen2LayerType = "full_attention" | "sliding_attention";

/** The sizes (vocab_size, hidden_size, layers, heads, head_dim, tie_word_embeddings) come from DecoderSizes. */
export interface Qwen2Config extends DecoderSizes {
  model_type: string;
  hidden_act: string;
  max_position_embeddings: number;
  rms_norm_eps: number;
  attention_dropout: number;
  rope_parameters: RopeParameters;
  /** Window of the sliding layers, or null when use_sliding_window is false. */
  sliding_window: number | null;
  max_window_layers: number;
  /** Attention kind of each layer (default: sliding from max_window_layers on, when sliding is on). */
  layer_types: Qwen2LayerType[];
  bos_token_id: number | null;
  eos_token_id: number[] | null;
  pad_token_id: number | null;
}

/** Reads a Qwen2 config (a config.json reader, or a plain object such as a VLM's text_config). */
export function parseQwen2Config(source: ConfigReader | JsonObject, file = "config.json"): Qwen2Config {
  const c = source instanceof ConfigReader ? source : new ConfigReader(source, file);
  const hiddenSize = c.size("hidden_size", 4096);
  const numHeads = c.size("num_attention_heads", 32);
  // transformers: absent means 32, an explicit null means num_attention_heads
  const numKvHeads = c.raw.num_key_value_heads === null ? numHeads : c.size("num_key_value_heads", 32);
  if (numHeads % numKvHeads !== 0) {
    throw new Error(`${c.file}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  // Without head_dim the heads split hidden_size evenly; a remainder would silently drop columns.
  if (!c.has("head_dim") && hiddenSize % numHeads !== 0) {
    throw new Error(`${c.file}: ${c.keyName("hidden_size")} (${hiddenSize}) must be divisible by ${c.keyName("num_attention_heads")} (${numHeads}) when head_dim is not given; fix one of them or give head_dim`);
  }
  const numLayers = c.layers("num_hidden_layers", 32);
  const maxPositionEmbeddings = c.size("max_position_embeddings", 32768);
  const useSlidingWindow = c.bool("use_sliding_window", false);
  const slidingWindowSize = c.int("sliding_window", 4096);
  const slidingWindow = useSlidingWindow ? slidingWindowSize : null;
  const maxWindowLayers = c.int("max_window_layers", 28);
  const givenTypes = c.stringList("layer_types");
  let layerTypes: Qwen2LayerType[];
  if (givenTypes) {
    if (givenTypes.length !== numLayers) throw new Error(`${c.file}: layer_types has ${givenTypes.length} entries but num_hidden_layers is ${numLayers}`);
    for (const t of givenTypes) {
      if (t !== "full_attention" && t !== "sliding_attention") throw new Error(`${c.file}: layer_types entry "${t}" must be "full_attention" or "sliding_attention"`);
    }
    layerTypes = givenTypes as Qwen2LayerType[];
  } else {
    layerTypes = Array.from({ length: numLayers }, (_, i) => (slidingWindow !== null && i >= maxWindowLayers ? "sliding_attention" : "full_attention"));
  }
  if (layerTypes.includes("sliding_attention") && slidingWindow === null) {
    throw new Error(`${c.file}: layer_types has sliding_attention layers but use_sliding_window is false; set use_sliding_window and sliding_window`);
  }
  return {
    model_type: c.string("model_type", "qwen2"),
    vocab_size: c.size("vocab_size", 151936),
    hidden_size: hiddenSize,
    intermediate_size: c.size("intermediate_size", 22016),
    num_hidden_layers: numLayers,
    num_attention_heads: numHeads,
    num_key_value_heads: numKvHeads,
    head_dim: c.size("head_dim", hiddenSize / numHeads, { nullable: true }),
    hidden_act: c.string("hidden_act", "silu"),
    max_position_embeddings: maxPositionEmbeddings,
    rms_norm_eps: c.float("rms_norm_eps", 1e-6),
    tie_word_embeddings: c.bool("tie_word_embeddings", false),
    attention_dropout: c.float("attention_dropout", 0),
    rope_parameters: readRopeParameters(c, { defaultTheta: 10000, maxPositionEmbeddings }),
    sliding_window: slidingWindow,
    max_window_layers: maxWindowLayers,
    layer_types: layerTypes,
    bos_token_id: c.int("bos_token_id", null),
    eos_token_id: c.intOrIntList("eos_token_id"),
    pad_token_id: c.int("pad_token_id", null),
  };
}

/** The parameter count of a Qwen2 config, by part (for the size check before building). */
export const qwen2SizeTerms = (c: ConfigReader): SizeTerm[] => decoderTerms(c, parseQwen2Config(c));
