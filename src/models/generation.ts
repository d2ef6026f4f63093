// Text generation with a KV cache, as transformers' generate() does it for decoder-only models: left-padded
// batches, position ids from the attention mask, greedy or sampled (temperature, top-k, top-p) tokens,
// stopping on eos ids, stop strings or max_new_tokens, finished rows padded with pad_token_id.
import { Tensor, tidy, keep, noGrad, tensor, ones, rand, cat, stack, manualSeed, dispose, F } from "../torch/index.js";
import { KVCache } from "./common/kv_cache.js";
import type { CausalLMInputs, CausalLMOutput } from "./common/outputs.js";
import type { GenerationConfig } from "./common/hf_folder.js";

/** A model generate() can drive: a causal LM forward with transformers' argument names. */
export interface GenerativeModel {
  forward(inputs: CausalLMInputs & Record<string, unknown>): CausalLMOutput;
  generationConfig?: GenerationConfig;
  config?: { eos_token_id?: number[] | null; pad_token_id?: number | null };
}

/** Only decode() is needed, to look for stop strings. */
export interface DecodingTokenizer {
  decode(ids: number[], options?: { skipSpecialTokens?: boolean }): string;
}

export interface GenerateOptions {
  /** Prompt ids [batch, seq] (int64), left-padded when rows differ in length. */
  input_ids: Tensor;
  /** 1 for prompt tokens, 0 for (left) padding; default all ones. */
  attention_mask?: Tensor | null;
  /** New tokens at most (default: generation_config's max_new_tokens, else 20). */
  max_new_tokens?: number;
  /** Sample instead of taking the most likely token (default: generation_config's do_sample, else false). */
  do_sample?: boolean;
  /** Divides the logits before sampling (default 1). */
  temperature?: number;
  /** Sample among the k most likely tokens (default 50 as in transformers; 0 = off). */
  top_k?: number;
  /** Sample within the smallest set of tokens whose probability reaches top_p (default 1 = off). */
  top_p?: number;
  /** Seeds the random generator (manualSeed) before sampling, for reproducible samples. */
  seed?: number;
  /** Token id(s) that end a row (default: generation_config's, else the model config's). */
  eos_token_id?: number | number[];
  /** Fills finished rows (default: generation_config's, else the first eos id). */
  pad_token_id?: number;
  /** Texts that end a row when the decoded text ends with one of them; needs tokenizer. */
  stop_strings?: string | string[];
  tokenizer?: DecodingTokenizer;
  /** Extra inputs for the first (prompt) forward only, e.g. { pixel_values } for a vision-language model. */
  model_inputs?: Record<string, unknown>;
  /** With return_dict_in_generate: also return each step's raw logits (before sampling warpers). */
  output_logits?: boolean;
  /** Return { sequences, logits? } instead of the sequences alone (transformers' GenerateDecoderOnlyOutput). */
  return_dict_in_generate?: boolean;
}

export interface GenerateOutput {
  /** [batch, prompt + new] ids (int64). */
  sequences: Tensor;
  /** With output_logits: [steps, batch, vocab] float32 logits of each generated position. */
  logits?: Tensor;
}

interface SamplingSettings {
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
}

/** transformers' TopKLogitsWarper: scores below the k-th largest become -inf (ties with it are kept). */
export function topKFilter(scores: Tensor, topK: number): Tensor {
  const vocab = scores.shape[scores.ndim - 1];
  const k = Math.min(topK, vocab);
  if (k <= 0 || k >= vocab) return scores.alias();
  return tidy(() => {
    const kth = scores.topk(k, -1).values.narrow(-1, k - 1, 1);
    return scores.maskedFill(scores.lt(kth), -Infinity);
  });
}

/**
 * transformers' TopPLogitsWarper: sort ascending, drop the tokens whose cumulative probability stays
 * within 1 - top_p, always keeping the most likely one.
 */
export function topPFilter(scores: Tensor, topP: number): Tensor {
  if (topP >= 1) return scores.alias();
  return tidy(() => {
    const { values, indices } = scores.sort(-1, false);
    const cumulative = values.softmax(-1).cumsum(-1);
    const vocab = scores.shape[scores.ndim - 1];
    // Never remove the last (most likely) sorted token: min_tokens_to_keep = 1.
    const removeSorted = F.pad(cumulative.le(1 - topP).narrow(-1, 0, vocab - 1).to("int32"), [0, 1]).ne(0);
    const remove = removeSorted.scatter(-1, indices, removeSorted);
    return scores.maskedFill(remove, -Infinity);
  });
}

/** One token per row [batch] (int64): argmax, or a sample from the warped distribution. */
function chooseTokens(logits: Tensor, settings: SamplingSettings): Tensor {
  return tidy(() => {
    if (!settings.doSample) return logits.argmax(-1);
    let scores = settings.temperature !== 1 ? logits.div(settings.temperature) : logits;
    if (settings.topK > 0) scores = topKFilter(scores, settings.topK);
    if (settings.topP < 1) scores = topPFilter(scores, settings.topP);
    const probs = scores.softmax(-1);
    // Inverse-CDF sampling: the first token whose cumulative probability exceeds u ~ U(0, total).
    const cdf = probs.cumsum(-1);
    const vocab = probs.shape[1];
    const total = cdf.narrow(1, vocab - 1, 1);
    const u = rand([probs.shape[0], 1], { device: probs.device }).mul(total);
    return cdf.le(u).sum(-1).clampMax(vocab - 1);
  });
}

function asList(value: number | number[] | null | undefined): number[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

function int64Rows(rows: number[][], device: string): Tensor {
  return tensor(rows, { dtype: "int64", device });
}

/**
 * Generates up to max_new_tokens after each prompt row and returns [batch, prompt + new] ids (int64), as
 * transformers' generate() does for decoder-only models. Rows stop at an eos id or stop string; once
 * finished they are filled with pad_token_id, and generation ends when every row has finished. Greedy
 * decoding gives transformers' tokens; sampling is reproducible for a given seed. Memory stays flat: each
 * step runs in its own tidy() and the cache replaces its tensors as it grows.
 */
export function generate(model: GenerativeModel, options: GenerateOptions & { return_dict_in_generate: true }): GenerateOutput;
export function generate(model: GenerativeModel, options: GenerateOptions): Tensor;
export function generate(model: GenerativeModel, options: GenerateOptions): Tensor | GenerateOutput {
  const gen = model.generationConfig ?? {};
  const inputIds = options.input_ids;
  if (inputIds.ndim !== 2) throw new Error(`generate: input_ids must be [batch, seq], got [${inputIds.shape}]`);
  const [batch, promptLength] = inputIds.shape;
  const device = inputIds.device;
  const maxNewTokens = options.max_new_tokens ?? gen.max_new_tokens ?? 20;
  const eosIds = asList(options.eos_token_id ?? gen.eos_token_id ?? model.config?.eos_token_id);
  const padId = options.pad_token_id ?? gen.pad_token_id ?? (eosIds.length > 0 ? eosIds[0] : undefined);
  const settings: SamplingSettings = {
    doSample: options.do_sample ?? gen.do_sample ?? false,
    temperature: options.temperature ?? gen.temperature ?? 1,
    topK: options.top_k ?? gen.top_k ?? 50,
    topP: options.top_p ?? gen.top_p ?? 1,
  };
  if (settings.doSample && !(settings.temperature > 0)) throw new Error(`generate: temperature must be > 0 when sampling, got ${settings.temperature}`);
  if (!(settings.topP > 0 && settings.topP <= 1)) throw new Error(`generate: top_p must be in (0, 1], got ${settings.topP}`);
  const stopStrings = options.stop_strings === undefined ? [] : Array.isArray(options.stop_strings) ? options.stop_strings : [options.stop_strings];
  if (stopStrings.length > 0 && !options.tokenizer) throw new Error("generate: stop_strings needs a tokenizer (pass tokenizer: the model's tokenizer)");
  if (options.attention_mask && (options.attention_mask.shape[0] !== batch || options.attention_mask.shape[1] !== promptLength)) {
    throw new Error(`generate: attention_mask must be [${batch}, ${promptLength}] like input_ids, got [${options.attention_mask.shape}]`);
  }
  if (settings.doSample && options.seed !== undefined) manualSeed(options.seed);

  return noGrad(() => {
    const cache = new KVCache();
    const promptRows = inputIds.toArray() as number[][];
    const maskRows: number[][] = options.attention_mask
      ? (tidy(() => options.attention_mask!.to("int64").toArray()) as number[][])
      : promptRows.map((row) => row.map(() => 1));
    // The tokens of each row so far (prompt without padding, then generated), for stop strings.
    const texts = promptRows.map((row, b) => row.filter((_, i) => maskRows[b][i] !== 0));
    const generated: number[][] = promptRows.map(() => []);
    const unfinished = new Array<boolean>(batch).fill(true);
    // Position of each row's next token: number of real tokens so far (transformers: cumsum(mask) - 1).
    const nextPosition = maskRows.map((row) => row.reduce((a, b) => a + (b !== 0 ? 1 : 0), 0));
    const maxStopLength = Math.max(0, ...stopStrings.map((s) => s.length));

    const stepLogits: Tensor[] = [];
    const keepLogits = options.return_dict_in_generate === true && options.output_logits === true;
    let attentionMask = int64Rows(maskRows, device);
    let out: CausalLMOutput | null = null;
    try {
      out = tidy(() => {
        const mask = attentionMask;
        const positions = mask.cumsum(-1).sub(1).maskedFill(mask.eq(0), 1);
        return model.forward({
          ...options.model_inputs,
          input_ids: inputIds,
          attention_mask: mask,
          position_ids: positions,
          past_key_values: cache,
          logits_to_keep: 1,
        });
      });
      for (let step = 0; step < maxNewTokens; step++) {
        const tokens = tidy(() => {
          const logits = out!.logits.select(1, out!.logits.shape[1] - 1).float();
          if (keepLogits) stepLogits.push(keep(logits.clone()));
          return chooseTokens(logits, settings).dataAsNumbers();
        });
        dispose(out);
        out = null;
        for (let b = 0; b < batch; b++) {
          if (!unfinished[b]) {
            tokens[b] = padId ?? tokens[b];
          } else {
            texts[b].push(tokens[b]);
            if (eosIds.includes(tokens[b])) unfinished[b] = false;
            else if (maxStopLength > 0 && endsWithStopString(options.tokenizer!, texts[b], stopStrings, maxStopLength)) unfinished[b] = false;
          }
          generated[b].push(tokens[b]);
        }
        if (step === maxNewTokens - 1 || !unfinished.includes(true)) break;
        const previousMask = attentionMask;
        attentionMask = tidy(() => cat([previousMask, ones([batch, 1], { dtype: "int64", device })], 1));
        previousMask.dispose();
        out = tidy(() => {
          const positions = int64Rows(nextPosition.map((p) => [p]), device);
          for (let b = 0; b < batch; b++) nextPosition[b]++;
          return model.forward({
            input_ids: int64Rows(tokens.map((t) => [t]), device),
            attention_mask: attentionMask,
            position_ids: positions,
            past_key_values: cache,
            logits_to_keep: 1,
          });
        });
      }
    } catch (error) {
      dispose(stepLogits);
      throw error;
    } finally {
      if (out) dispose(out);
      attentionMask.dispose();
      cache.dispose();
    }
    const sequences = int64Rows(promptRows.map((row, b) => [...row, ...generated[b]]), device);
    if (!options.return_dict_in_generate) return sequences;
    const result: GenerateOutput = { sequences };
    if (keepLogits) {
      result.logits = stack(stepLogits, 0);
      dispose(stepLogits);
    }
    return result;
  });
}

/** transformers' StopStringCriteria, on text: does the row's decoded tail end with a stop string? */
function endsWithStopString(tokenizer: DecodingTokenizer, ids: number[], stopStrings: string[], maxStopLength: number): boolean {
  // A character takes at most 4 byte-level tokens, so this tail holds the longest stop string.
  const tail = ids.slice(Math.max(0, ids.length - (4 * maxStopLength + 4)));
  const text = tokenizer.decode(tail);
  return stopStrings.some((s) => text.endsWith(s));
}
