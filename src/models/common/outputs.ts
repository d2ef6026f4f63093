// Model inputs and outputs with transformers' names, and the causal language-modelling loss.
import { Tensor, F } from "../../torch/index.js";
import type { KVCache } from "./kv_cache.js";

/** Inputs of a causal language model's forward (transformers' argument names). */
export interface CausalLMInputs {
  /** Token ids [batch, seq] (int64). Give this or inputs_embeds. */
  input_ids?: Tensor;
  /** 1 for real tokens, 0 for padding: [batch, past + seq]. Absent = no padding. */
  attention_mask?: Tensor | null;
  /** Embeddings [batch, seq, hidden] instead of input_ids (multimodal models splice image features in). */
  inputs_embeds?: Tensor;
  /** [batch, seq]; default past + 0 .. seq-1 for every row (transformers' forward; generate() passes cumsum - 1). */
  position_ids?: Tensor;
  /** Targets [batch, seq] for the next-token loss; -100 = ignored. Shifted inside, as in transformers. */
  labels?: Tensor;
  /** A cache to read and extend in place (generation). */
  past_key_values?: KVCache | null;
  /** Make a new cache when none is passed (default false). */
  use_cache?: boolean;
  /** Also return every hidden state: embeddings, then each layer's output, the last one after the final norm. */
  output_hidden_states?: boolean;
  /** Compute logits only for the last n positions (0 = all, the default). */
  logits_to_keep?: number;
  /** Divide the summed loss by this instead of the count of non-ignored labels (gradient accumulation). */
  num_items_in_batch?: number;
}

/** transformers' CausalLMOutputWithPast. */
export interface CausalLMOutput {
  logits: Tensor;
  loss?: Tensor;
  /** embeddings output, layer 1 .. n-1 outputs, final normed output (num_hidden_layers + 1 tensors). */
  hidden_states?: Tensor[];
  past_key_values?: KVCache;
}

/** Output of the bare decoder (transformers' BaseModelOutputWithPast). */
export interface DecoderOutput {
  last_hidden_state: Tensor;
  hidden_states?: Tensor[];
  past_key_values?: KVCache;
}

export interface CausalLMLossOptions {
  ignoreIndex?: number;
  /** When set, the loss is sum / numItemsInBatch instead of the mean over non-ignored tokens. */
  numItemsInBatch?: number;
}

/**
 * transformers' ForCausalLMLoss: logits at position t predict labels at t+1. Labels are padded with
 * ignoreIndex on the right and shifted left, half-precision logits are upcast to float32, and the cross entropy is the
 * mean over non-ignored tokens (or the sum divided by numItemsInBatch).
 */
export function causalLMLoss(logits: Tensor, labels: Tensor, options: CausalLMLossOptions = {}): Tensor {
  const ignoreIndex = options.ignoreIndex ?? -100;
  const vocabSize = logits.shape[logits.ndim - 1];
  if (labels.ndim !== 2 || labels.shape[0] !== logits.shape[0] || labels.shape[1] !== logits.shape[1]) {
    throw new Error(`labels must be [batch, seq] = [${logits.shape.slice(0, 2)}] like the logits, got [${labels.shape}]`);
  }
  // Half-precision logits are upcast (as transformers does); float32 and float64 stay as they are.
  const logits32 = logits.dtype === "float16" || logits.dtype === "bfloat16" ? logits.float() : logits.alias();
  const labels64 = labels.dtype === "int64" ? labels.alias() : labels.long();
  const padded = F.pad(labels64, [0, 1], "constant", ignoreIndex);
  const shifted = padded.slice(1, 1, null);
  const flatLogits = logits32.reshape(-1, vocabSize);
  const flatLabels = shifted.reshape(-1);
  let loss: Tensor;
  if (options.numItemsInBatch !== undefined) {
    const summed = F.crossEntropy(flatLogits, flatLabels, { ignoreIndex, reduction: "sum" });
    loss = summed.div(options.numItemsInBatch);
    summed.dispose();
  } else {
    loss = F.crossEntropy(flatLogits, flatLabels, { ignoreIndex, reduction: "mean" });
  }
  for (const t of [logits32, labels64, padded, shifted, flatLogits, flatLabels]) t.dispose();
  return loss;
}

/**
 * The LM-head half of a ForCausalLM forward: logits of the last `logits_to_keep` positions (all when 0),
 * the shifted loss when labels are given, and the decoder's hidden states and cache passed through. The
 * decoder's last hidden state is freed unless the caller asked for hidden states (which hold it).
 */
export function causalLMHead(lmHead: { forward(x: Tensor): Tensor }, out: DecoderOutput, inputs: CausalLMInputs): CausalLMOutput {
  const keep = inputs.logits_to_keep ?? 0;
  const length = out.last_hidden_state.shape[1];
  const selected = keep > 0 && keep < length ? out.last_hidden_state.narrow(1, length - keep, keep) : out.last_hidden_state;
  const logits = lmHead.forward(selected);
  if (selected !== out.last_hidden_state) selected.dispose();
  if (!inputs.output_hidden_states) out.last_hidden_state.dispose();
  const result: CausalLMOutput = { logits };
  if (inputs.labels) result.loss = causalLMLoss(logits, inputs.labels, { numItemsInBatch: inputs.num_items_in_batch });
  if (out.hidden_states) result.hidden_states = out.hidden_states;
  if (out.past_key_values) result.past_key_values = out.past_key_values;
  return result;
}
