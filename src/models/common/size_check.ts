// Refuses, before anything is allocated, a config whose model cannot fit: the parameter count is estimated
// from the config's sizes, times the bytes of the load dtype, against the target device's memory. Absent
// keys take transformers' defaults, which can be large (a LLaVA config without text_config is a 7B Llama),
// so the error names the keys behind the largest part and says which of them were defaulted.
import { totalmem } from "node:os";
import { cuda } from "../../torch/cuda.js";
import { toDType } from "../../torch/tensor.js";
import type { ConfigReader } from "./config_reader.js";

/** A config key behind a size: its name from the top of the file, the value used, and whether the file gave it. */
export interface KeyUse {
  name: string;
  value: number;
  given: boolean;
}

/** The use of `key` of `reader` with the value the parser settled on. */
export const keyUse = (reader: ConfigReader, key: string, value: number): KeyUse => ({ name: reader.keyName(key), value, given: reader.has(key) });

/** One part of a model: its parameter count, the keys that size it, and a note for the message. */
export interface SizeTerm {
  what: string;
  params: number;
  keys: KeyUse[];
  note?: string;
}

/** The parts of a model of one model_type, from its config (which the estimator parses, and so validates). */
export type ParameterEstimator = (config: ConfigReader) => SizeTerm[];

const estimators = new Map<string, ParameterEstimator>();

/** Lets checkModelFits() estimate configs of this model_type (a type without one is not checked). */
export function registerParameterEstimate(modelType: string, estimate: ParameterEstimator): void {
  estimators.set(modelType, estimate);
}

/** The parts of the model a config describes, by its model_type (`fallbackType` when absent); null when unknown. */
export function estimateParameters(config: ConfigReader, fallbackType?: string): SizeTerm[] | null {
  const modelType = config.string("model_type", fallbackType ?? null);
  const estimate = modelType === null ? undefined : estimators.get(modelType);
  return estimate ? estimate(config) : null;
}

/** A term's keys for a message: "text_config.hidden_size=4096 (absent: transformers' default)". */
const keyList = (term: SizeTerm) => term.keys.map((k) => `${k.name}=${k.value}${k.given ? "" : " (absent: transformers' default)"}`).join(", ");

const BYTES: Record<string, number> = { float32: 4, float64: 8, float16: 2, bfloat16: 2 };
const gb = (bytes: number) => (bytes / 1e9).toFixed(bytes >= 1e10 ? 0 : 1);
const count = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${Math.round(n)}`);

export interface FitOptions {
  device?: string;
  /** The load dtype; "auto" (the checkpoint's) is estimated from config.json's torch_dtype / dtype, else float32. */
  dtype?: string;
  /** Bytes the weights may take; default os.totalmem() on the CPU, the device's memory on CUDA. */
  memoryLimit?: number;
}

/**
 * Throws an error naming the config's keys when the model it describes needs more memory than the device has.
 */
export function checkModelFits(config: ConfigReader, options: FitOptions = {}, fallbackType?: string): void {
  const terms = estimateParameters(config, fallbackType);
  if (terms === null) return;
  let dtypeName = options.dtype ?? "float32";
  if (dtypeName === "auto") dtypeName = config.string("torch_dtype", null) ?? config.string("dtype", null) ?? "float32";
  let dtype: string;
  try {
    dtype = toDType(dtypeName);
  } catch {
    dtype = "float32";
  }
  const bytesPer = BYTES[dtype] ?? 4;
  const device = options.device ?? "cpu";
  const limit = options.memoryLimit ?? deviceMemory(device);
  const params = terms.reduce((sum, t) => sum + t.params, 0);
  const bytes = params * bytesPer;
  if (limit === null || bytes <= limit) return;
  const largest = [...terms].sort((a, b) => b.params - a.params)[0];
  let message =
    `${config.file}: this config describes a model of about ${count(params)} parameters, ${gb(bytes)} GB in ${dtype}, ` +
    `more than the ${gb(limit)} GB ${options.memoryLimit !== undefined ? "memory limit" : device === "cpu" ? "of this machine's memory" : `of ${device}'s memory`}; ` +
    `the largest part is ${largest.what} (${count(largest.params)} parameters) from ${keyList(largest)}`;
  for (const note of terms.map((t) => t.note).filter((n) => n)) message += `; ${note}`;
  message += `. Fix these keys in ${config.file} (or load in a smaller dtype)`;
  throw new Error(message);
}

/** The sizes of a Llama-style decoder (Llama, Qwen2, ...). */
export interface DecoderSizes {
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Grouped-query attention: key/value heads shared by num_attention_heads / num_key_value_heads queries. */
  num_key_value_heads: number;
  head_dim: number;
  tie_word_embeddings: boolean;
}

/** Embeddings, layers and lm_head of a Llama-style decoder (norms and biases are too small to matter). */
export function decoderTerms(c: ConfigReader, s: DecoderSizes): SizeTerm[] {
  const vocab = keyUse(c, "vocab_size", s.vocab_size);
  const hidden = keyUse(c, "hidden_size", s.hidden_size);
  const attention = s.hidden_size * s.head_dim * (2 * s.num_attention_heads + 2 * s.num_key_value_heads);
  const perLayer = attention + 3 * s.hidden_size * s.intermediate_size + 2 * s.hidden_size;
  const terms: SizeTerm[] = [
    { what: `${c.path || "the"} token embeddings`, params: s.vocab_size * s.hidden_size, keys: [vocab, hidden] },
    {
      what: `${c.path || "the"} decoder layers`,
      params: s.num_hidden_layers * perLayer,
      keys: [keyUse(c, "num_hidden_layers", s.num_hidden_layers), hidden, keyUse(c, "intermediate_size", s.intermediate_size)],
    },
  ];
  if (!s.tie_word_embeddings) terms.push({ what: `${c.path ? c.path + " " : ""}lm_head`, params: s.vocab_size * s.hidden_size, keys: [vocab, hidden] });
  return terms;
}

/** The sizes of a ViT-style encoder layer stack (CLIP and SigLIP towers). */
export function encoderLayersTerm(c: ConfigReader, s: { hidden_size: number; intermediate_size: number; num_hidden_layers: number }): SizeTerm {
  return {
    what: `${c.path || "the"} encoder layers`,
    params: s.num_hidden_layers * (4 * s.hidden_size * s.hidden_size + 2 * s.hidden_size * s.intermediate_size + 4 * s.hidden_size),
    keys: [keyUse(c, "num_hidden_layers", s.num_hidden_layers), keyUse(c, "hidden_size", s.hidden_size), keyUse(c, "intermediate_size", s.intermediate_size)],
  };
}

/** The memory of a device in bytes, or null when it cannot be known (a device this build cannot query). */
function deviceMemory(device: string): number | null {
  if (device === "cpu") return totalmem();
  const match = /^cuda(?::(\d+))?$/.exec(device);
  if (!match || !cuda.isAvailable()) return null;
  return cuda.totalMemory(match[1] === undefined ? undefined : Number(match[1]));
}
