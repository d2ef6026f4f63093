// LlamaConfig from config.json, with transformers' defaults (models/llama/configuration_llama.py).
import { ConfigReader, type JsonObject } from "../common/config_reader.js";
import { decoderTerms, type DecoderSizes, type SizeTerm } from "../common/size_check.js";
import { readRopeParameters, type RopeParameters } from "../common/rotary.js";

/** The sizes (vocab_size, hidden_size, layers, heads, head_dim, tie_word_embeddings) come from DecoderSizes. */
export interface LlamaConfig extends DecoderSizes {
  model_type: string;
  hidden_act: string;
  max_position_embeddings: number;
  rms_norm_eps: number;
  /** Bias on q/k/v/o projections. */
  attention_bias: boolean;
  /** Bias on gate/up/down projections. */
  mlp_bias: boolean;
  attention_dropout: number;
  rope_parameters: RopeParameters;
  bos_token_id: number | null;
  eos_token_id: number[] | null;
  pad_token_id: number | null;
}

/** Reads a Llama config (a config.json reader, or a plain object such as LLaVA's text_config). */
export function parseLlamaConfig(source: ConfigReader | JsonObject, file = "config.json"): LlamaConfig {
  const c = source instanceof ConfigReader ? source : new ConfigReader(source, file);
  const hiddenSize = c.size("hidden_size", 4096);
  const numHeads = c.size("num_attention_heads", 32);
  const numKvHeads = c.size("num_key_value_heads", numHeads, { nullable: true });
  if (numHeads % numKvHeads !== 0) {
    throw new Error(`${c.file}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  // Without head_dim the heads split hidden_size evenly; a remainder would silently drop columns.
  if (!c.has("head_dim") && hiddenSize % numHeads !== 0) {
    throw new Error(`${c.file}: ${c.keyName("hidden_size")} (${hiddenSize}) must be divisible by ${c.keyName("num_attention_heads")} (${numHeads}) when head_dim is not given; fix one of them or give head_dim`);
  }
  const maxPositionEmbeddings = c.size("max_position_embeddings", 2048);
  return {
    model_type: c.string("model_type", "llama"),
    vocab_size: c.size("vocab_size", 32000),
    hidden_size: hiddenSize,
    intermediate_size: c.size("intermediate_size", 11008),
    num_hidden_layers: c.layers("num_hidden_layers", 32),
    num_attention_heads: numHeads,
    num_key_value_heads: numKvHeads,
    head_dim: c.size("head_dim", hiddenSize / numHeads, { nullable: true }),
    hidden_act: c.string("hidden_act", "silu"),
    max_position_embeddings: maxPositionEmbeddings,
    rms_norm_eps: c.float("rms_norm_eps", 1e-6),
    tie_word_embeddings: c.bool("tie_word_embeddings", false),
    attention_bias: c.bool("attention_bias", false),
    mlp_bias: c.bool("mlp_bias", false),
    attention_dropout: c.float("attention_dropout", 0),
    rope_parameters: readRopeParameters(c, { defaultTheta: 10000, maxPositionEmbeddings }),
    // An explicit null in the file means "none", as in transformers; absent means the default.
    bos_token_id: "bos_token_id" in c.raw ? c.int("bos_token_id", null) : 1,
    eos_token_id: "eos_token_id" in c.raw ? c.intOrIntList("eos_token_id") : [2],
    pad_token_id: c.int("pad_token_id", null),
  };
}

/** The parameter count of a Llama config, by part (for the size check before building). */
export const llamaSizeTerms = (c: ConfigReader): SizeTerm[] => decoderTerms(c, parseLlamaConfig(c));
