// The training tasks the commands run on a LLaVA-style model: classification with a head on pooled hidden
// states (features cached in memory and on disk when the backbone is frozen), and generative fine-tuning on
// conversations (loss on the assistant's tokens only). Both implement the Trainer's TrainTask contract.
import { join } from "node:path";
import { F, buildInfo, keep, noGrad, stack, tensor, tidy, type Tensor } from "../torch/index.js";
import type { Module } from "../torch/nn/index.js";
import type { Batch, DataSource, TrainTask, LossOutput } from "../train/index.js";
import { ClassificationHead, poolHidden, type Pooling } from "../heads/classification.js";
import { FeatureCache, FileHasher, folderFileHashes, modelFolderIdentity, sha256, tensorDigest } from "../heads/feature_cache.js";
import type { RgbImage } from "../data/image.js";
import { PROCESSOR_FILES, encodePrompts, hiddenStates, promptText, type LoadedVlm } from "./vlm.js";

// ---- data ----

/** One sample: its images (a video's frames), and the class for classification or the conversation for SFT. */
export interface VisualSample {
  /** Identifies the sample across epochs (its record source, "file:line"). */
  key: string;
  images: RgbImage[];
  labelIndex: number;
  /** The files the images come from (image files, or a video's frame folder): the sample's id in a FeatureCache. */
  media?: string[];
}

export interface SampleBatch<S extends VisualSample = VisualSample> extends Batch {
  samples: S[];
}

/** A DataSource over samples loaded lazily by index. */
export class SampleSource<S extends VisualSample = VisualSample> implements DataSource<SampleBatch<S>> {
  constructor(
    readonly count: number,
    readonly sample: (index: number) => S,
  ) {}
  get length(): number {
    return this.count;
  }
  batch(indices: number[]): SampleBatch<S> {
    return { size: indices.length, samples: indices.map((i) => this.sample(i)) };
  }
}

function* batchesOf<S extends VisualSample>(data: DataSource<SampleBatch<S>>, batchSize: number): Generator<SampleBatch<S>> {
  for (let start = 0; start < data.length; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, data.length - start) }, (_, i) => start + i);
    yield data.batch(indices);
  }
}

// ---- classification ----

export interface ClassificationTaskOptions {
  question: string;
  pooling: Pooling;
  hiddenLayer: number;
  /** The backbone is frozen: features are computed once per sample and reused (unless cacheFeatures is false). */
  frozenBackbone: boolean;
  cacheFeatures: boolean;
  /** Where cached features persist between runs (samples with `media` only); null or absent: this run only. */
  store?: FeatureCache | null;
  /** Standardize features with the training set's mean and std before the head (see fitFeatureNorm). */
  normalizeFeatures: boolean;
  topK: number;
}

export interface ClassificationScores {
  /** Softmax probabilities per sample. */
  probabilities: number[][];
  yTrue: number[];
  loss: number;
}

/** How many samples warmCache computes between writes to the store, so an interrupted run keeps most of its work. */
const SAVE_EVERY = 4096;

const FEATURE_MEAN = "feature_norm.mean";
const FEATURE_STD = "feature_norm.std";

/** A head on pooled hidden states of the VLM's language model for the prompt (images + question). */
export class VlmClassificationTask implements TrainTask<SampleBatch> {
  readonly #cache = new Map<string, Tensor>();
  // Pooled hidden states share a large common component and differ little between classes; standardizing them
  // (as linear probes do with a non-affine BatchNorm) makes the head train in a few epochs instead of stalling.
  #featureMean: Tensor | null = null;
  #featureStd: Tensor | null = null;
  /** Samples whose features were computed (for the report: cached work is not redone). */
  featureComputations = 0;

  constructor(
    readonly vlm: LoadedVlm,
    readonly head: ClassificationHead,
    readonly options: ClassificationTaskOptions,
  ) {}

  trainableModules(): Module[] {
    return this.options.frozenBackbone ? [this.head] : [this.vlm.model, this.head];
  }

  trainableModuleNames(): string[] {
    return this.options.frozenBackbone ? ["head"] : ["model", "head"];
  }

  /** Pooled features [batch, hidden] of the samples. */
  #computeFeatures(samples: VisualSample[]): Tensor {
    this.featureComputations += samples.length;
    return tidy(() => {
      const inputs = encodePrompts(this.vlm, samples.map((s) => ({ images: s.images, question: this.options.question })));
      const hidden = hiddenStates(this.vlm.model, inputs, this.options.hiddenLayer);
      return poolHidden(hidden, inputs.attention_mask, this.options.pooling).float();
    });
  }

  get #caching(): boolean {
    return this.options.frozenBackbone && this.options.cacheFeatures;
  }

  /** Features of the samples (standardized once fitFeatureNorm ran): from the cache when the backbone is frozen. */
  features(samples: VisualSample[]): Tensor {
    return tidy(() => {
      const raw = this.#rawFeatures(samples);
      return this.#featureMean && this.#featureStd ? raw.sub(this.#featureMean).div(this.#featureStd) : raw;
    });
  }

  #rawFeatures(samples: VisualSample[]): Tensor {
    if (!this.options.frozenBackbone) return this.#computeFeatures(samples);
    if (!this.#caching) return noGrad(() => this.#computeFeatures(samples));
    const missing = samples.filter((s) => !this.#cache.has(s.key));
    if (missing.length > 0) {
      noGrad(() =>
        tidy(() => {
          const rows = this.#computeFeatures(missing).unbind(0);
          missing.forEach((s, i) => this.#cache.set(s.key, keep(rows[i].clone())));
        }),
      );
    }
    return stack(samples.map((s) => this.#cache.get(s.key)!));
  }

  /**
   * Sets the feature standardization from up to maxSamples training samples (all of them cost nothing more when
   * cached). With LoRA the statistics are those of the starting weights, fixed for the run.
   */
  fitFeatureNorm(data: DataSource<SampleBatch>, batchSize: number, maxSamples = 1024): void {
    if (!this.options.normalizeFeatures) return;
    const count = this.#caching ? data.length : Math.min(data.length, maxSamples);
    const stats = noGrad(() =>
      tidy(() => {
        const chunks: Tensor[] = [];
        for (let start = 0; start < count; start += batchSize) {
          const indices = Array.from({ length: Math.min(batchSize, count - start) }, (_, i) => start + i);
          chunks.push(this.#rawFeatures(data.batch(indices).samples));
        }
        const all = F.cat(chunks, 0);
        return { mean: all.mean(0), std: all.std(0).add(1e-5) };
      }),
    );
    this.#setFeatureNorm(keep(stats.mean), keep(stats.std));
  }

  #setFeatureNorm(mean: Tensor, std: Tensor): void {
    this.#featureMean?.dispose();
    this.#featureStd?.dispose();
    this.#featureMean = mean;
    this.#featureStd = std;
  }

  /**
   * Caches the features of every sample of `data` now (frozen backbone only): those in the store are loaded, the
   * rest computed and added to the store. Counts samples not already in memory.
   */
  warmCache(data: DataSource<SampleBatch>, batchSize: number): { loaded: number; computed: number } {
    if (!this.#caching) return { loaded: 0, computed: 0 };
    const store = this.options.store ?? null;
    const pending = new Map<string, VisualSample>();
    for (const batch of batchesOf(data, batchSize)) for (const s of batch.samples) if (!this.#cache.has(s.key)) pending.set(s.key, s);
    const ids = new Map<string, string>();
    let loaded = 0;
    if (store) {
      for (const s of pending.values()) if (s.media && s.media.length > 0) ids.set(s.key, store.sampleId(s.media));
      const found = store.load([...ids.values()]);
      try {
        for (const [key, id] of ids) {
          const row = found.get(id);
          if (!row || !pending.has(key)) continue;
          this.#cache.set(key, keep(tidy(() => row.to({ device: this.vlm.device, copy: true }))));
          pending.delete(key);
          loaded++;
        }
      } finally {
        for (const t of found.values()) t.dispose();
      }
    }
    const missing = [...pending.values()];
    const unsaved = new Map<string, Tensor>();
    const save = () => {
      store!.save(unsaved);
      unsaved.clear();
    };
    for (let start = 0; start < missing.length; start += batchSize) {
      const chunk = missing.slice(start, start + batchSize);
      tidy(() => void this.#rawFeatures(chunk));
      if (!store) continue;
      for (const s of chunk) if (ids.has(s.key)) unsaved.set(ids.get(s.key)!, this.#cache.get(s.key)!);
      if (unsaved.size >= SAVE_EVERY) save();
    }
    if (store) {
      if (unsaved.size > 0) save();
      store.flush();
    }
    return { loaded, computed: missing.length };
  }

  get cachedSamples(): number {
    return this.#cache.size;
  }

  logits(samples: VisualSample[]): Tensor {
    return tidy(() => this.head.forward(this.features(samples)));
  }

  loss(batch: SampleBatch): LossOutput {
    const logits = this.logits(batch.samples);
    const target = tensor(batch.samples.map((s) => s.labelIndex), { dtype: "int64", device: logits.device });
    const loss = F.crossEntropy(logits, target);
    const correct = logits.argmax(-1).eq(target).sum().item();
    return { loss, correct, total: batch.size };
  }

  /** Probabilities of every sample of `data`, in order (eval mode is the caller's business). */
  scores(data: DataSource<SampleBatch>, batchSize: number): ClassificationScores {
    const probabilities: number[][] = [];
    const yTrue: number[] = [];
    let lossSum = 0;
    noGrad(() => {
      for (const batch of batchesOf(data, batchSize)) {
        tidy(() => {
          const logits = this.logits(batch.samples);
          const target = tensor(batch.samples.map((s) => s.labelIndex), { dtype: "int64", device: logits.device });
          lossSum += F.crossEntropy(logits, target, { reduction: "sum" }).item();
          probabilities.push(...(F.softmax(logits, -1).toArray() as number[][]));
          yTrue.push(...batch.samples.map((s) => s.labelIndex));
        });
      }
    });
    return { probabilities, yTrue, loss: lossSum / Math.max(1, yTrue.length) };
  }

  evaluate(data: DataSource<SampleBatch>, batchSize: number): Record<string, number> {
    return this.metrics(this.scores(data, batchSize));
  }

  /** accuracy, loss and top-k accuracy of scored samples. */
  metrics({ probabilities, yTrue, loss }: ClassificationScores): Record<string, number> {
    const k = Math.min(this.options.topK, this.head.numClasses);
    const top1 = probabilities.filter((p, i) => argmax(p) === yTrue[i]).length / Math.max(1, yTrue.length);
    const metrics: Record<string, number> = { accuracy: top1, loss };
    if (k > 1) metrics[`top${k}`] = topK(probabilities, yTrue, k);
    return metrics;
  }

  checkpointTensors(): Map<string, Tensor> {
    const tensors = new Map<string, Tensor>();
    if (this.#featureMean && this.#featureStd) {
      tensors.set(FEATURE_MEAN, this.#featureMean);
      tensors.set(FEATURE_STD, this.#featureStd);
    }
    for (const [name, p] of this.head.namedParameters()) tensors.set(`head.${name}`, p);
    if (!this.options.frozenBackbone) {
      for (const [name, p] of this.vlm.model.namedParameters()) if (p.requiresGrad) tensors.set(`model.${name}`, p);
    }
    return tensors;
  }

  loadCheckpointTensors(tensors: Map<string, Tensor>): void {
    const mean = tensors.get(FEATURE_MEAN);
    const std = tensors.get(FEATURE_STD);
    if (mean && std) this.#setFeatureNorm(keep(mean.clone()), keep(std.clone()));
    const rest = new Map([...tensors].filter(([name]) => name !== FEATURE_MEAN && name !== FEATURE_STD));
    loadNamedTensors({ head: this.head, model: this.vlm.model }, rest);
    // weights changed: cached features stay valid only for a frozen backbone
    if (!this.options.frozenBackbone) this.clearCache();
  }

  clearCache(): void {
    for (const t of this.#cache.values()) t.dispose();
    this.#cache.clear();
  }

  /** Frees the cache and the standardization (the head and model belong to the caller). */
  dispose(): void {
    this.clearCache();
    this.#featureMean?.dispose();
    this.#featureStd?.dispose();
    this.#featureMean = this.#featureStd = null;
  }
}

// ---- features kept between runs ----

export interface FeatureStoreOptions {
  /** The cache's root folder (one FeatureCache folder per setting below it). */
  dir: string;
  /** The folder of the weights the model holds (config.json + safetensors); for a random base, where it was saved. */
  weightsFolder: string;
  /** Frames sampled per video. */
  numFrames: number;
  log?: (line: string) => void;
}

/**
 * Everything pooled features of a frozen backbone depend on besides the sample: the weights (by content), dtype,
 * device kind and libtorch version (numerics), LoRA tensors when the model has any, the processor's files and
 * parsed settings (image size, mean / std, resampling, tokenizer, chat template), the rendered prompt, and the
 * hidden layer and pooling.
 */
export function classificationFeatureIdentity(
  vlm: LoadedVlm, options: Pick<ClassificationTaskOptions, "question" | "pooling" | "hiddenLayer">, weightsFolder: string, hasher: FileHasher,
): Record<string, unknown> {
  const parameters = vlm.model.namedParameters();
  const lora = parameters.filter(([name]) => name.includes(".lora_"));
  const imageProcessor = vlm.processor.imageProcessor as { config?: unknown; backend?: unknown };
  const prompt = promptText(vlm.tokenizer, vlm.processor, 1, options.question);
  return {
    task: "vlm-classification",
    model: modelFolderIdentity(hasher, weightsFolder),
    dtype: parameters[0]?.[1].dtype ?? null,
    device: vlm.device.replace(/:\d+$/, ""),
    torch: buildInfo().torch,
    adapter: lora.length === 0 ? null : sha256(lora.map(([name, p]) => `${name}:${p.dtype}:[${p.shape}]:${tensorDigest(p)}`).join("\n")),
    processor: {
      files: folderFileHashes(hasher, vlm.folder, PROCESSOR_FILES),
      image: { config: imageProcessor.config ?? null, backend: imageProcessor.backend ?? null },
      llava: vlm.processor.config,
    },
    prompt: { question: options.question, text: prompt, ids: vlm.tokenizer.encode(prompt, { addSpecialTokens: false }) },
    hiddenLayer: options.hiddenLayer,
    pooling: options.pooling,
  };
}

/** The on-disk cache of a classification task's features (hashes the model's weight files on first use). */
export function openFeatureCache(vlm: LoadedVlm, options: Pick<ClassificationTaskOptions, "question" | "pooling" | "hiddenLayer">, store: FeatureStoreOptions): FeatureCache {
  const hasher = new FileHasher(join(store.dir, "file-hashes.json"));
  const identity = classificationFeatureIdentity(vlm, options, store.weightsFolder, hasher);
  return new FeatureCache(store.dir, identity, hasher, { numFrames: store.numFrames, log: store.log });
}

/** Copies "head.x" / "model.y" tensors into the live parameters of those modules; unknown names are errors. */
export function loadNamedTensors(modules: Record<string, Module>, tensors: Map<string, Tensor>): void {
  noGrad(() => {
    for (const [name, value] of tensors) {
      const dot = name.indexOf(".");
      const module = modules[name.slice(0, dot)];
      if (!module) throw new Error(`checkpoint tensor '${name}' belongs to no module of this task (${Object.keys(modules).join(", ")})`);
      const target = module.getParameter(name.slice(dot + 1));
      if (target.shape.join(",") !== value.shape.join(",")) throw new Error(`checkpoint tensor '${name}' is [${value.shape}] but the model's is [${target.shape}]`);
      target.copy_(value);
    }
  });
}

export function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function topK(probabilities: number[][], yTrue: number[], k: number): number {
  let hits = 0;
  probabilities.forEach((p, i) => {
    const truth = p[yTrue[i]];
    const above = p.filter((v) => v > truth).length;
    if (above < k) hits++;
  });
  return hits / Math.max(1, yTrue.length);
}

// ---- generative fine-tuning ----

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
  [key: string]: unknown;
}

/** A conversation sample: messages with <image> placeholders in the text, one per image. */
export interface ConversationSample extends VisualSample {
  messages: ChatMessage[];
}

export interface SftTaskOptions {
  maxLength: number;
  /** Skip (and count) samples cut inside their image tokens instead of throwing. */
  skipTruncated: boolean;
}

interface EncodedConversation {
  ids: number[];
  labels: number[];
}

/** Fine-tunes the VLM on conversations: next-token loss on the assistant's tokens only (labels -100 elsewhere). */
export class VlmSftTask implements TrainTask<SampleBatch<ConversationSample>> {
  /** Samples skipped because their text would be cut inside the image tokens. */
  readonly skipped = new Set<string>();
  readonly #encoded = new Map<string, EncodedConversation | null>();

  constructor(
    readonly vlm: LoadedVlm,
    readonly options: SftTaskOptions,
  ) {}

  trainableModules(): Module[] {
    return [this.vlm.model];
  }

  trainableModuleNames(): string[] {
    return ["model"];
  }

  #imageTokens(images: RgbImage[]): number[] {
    const processor = this.vlm.processor;
    return images.map((image) => {
      const size = processor.imageProcessor instanceof Object && "outputSize" in processor.imageProcessor
        ? (processor.imageProcessor as { outputSize(w: number, h: number): { width: number; height: number } }).outputSize(image.width, image.height)
        : { width: image.width, height: image.height };
      return processor.numImageTokens(size.height, size.width);
    });
  }

  /**
   * Token ids and labels of a conversation: the chat template's text, image placeholders expanded, and labels
   * equal to the ids on each assistant message (its end token included), -100 elsewhere. Null when skipped.
   */
  encode(sample: ConversationSample): EncodedConversation | null {
    const cached = this.#encoded.get(sample.key);
    if (cached !== undefined) return cached;
    const { tokenizer, processor } = this.vlm;
    const counts = this.#imageTokens(sample.images);
    const expand = (text: string) => {
      const placeholders = text.split(processor.imageToken).length - 1;
      return placeholders === 0 ? text : processor.expandImageTokens([text], counts.slice(0, placeholders))[0];
    };
    const placeholderTotal = sample.messages.reduce((n, m) => n + m.content.split(processor.imageToken).length - 1, 0);
    if (placeholderTotal !== sample.images.length) {
      throw new Error(`${sample.key}: the conversation has ${placeholderTotal} ${processor.imageToken} placeholder(s) but ${sample.images.length} image(s)`);
    }
    // Render growing prefixes: the tokens each assistant message adds are its label span.
    const ids: number[] = [];
    const labels: number[] = [];
    let renderedTokens: number[] = [];
    for (let i = 0; i < sample.messages.length; i++) {
      const message = sample.messages[i];
      if (message.role === "assistant") {
        const cue = tokenizer.encode(expand(tokenizer.applyChatTemplate(sample.messages.slice(0, i), { addGenerationPrompt: true })), { addSpecialTokens: false });
        const extra = cue.slice(renderedTokens.length);
        ids.push(...extra);
        labels.push(...extra.map(() => -100));
        renderedTokens = cue;
      }
      const upTo = tokenizer.encode(expand(tokenizer.applyChatTemplate(sample.messages.slice(0, i + 1))), { addSpecialTokens: false });
      if (upTo.slice(0, renderedTokens.length).some((id, k) => id !== renderedTokens[k])) {
        throw new Error(`${sample.key}: the chat template's tokens for message ${i + 1} do not extend those before it; cannot place the assistant labels`);
      }
      const added = upTo.slice(renderedTokens.length);
      ids.push(...added);
      // the assistant's content and end token are learned; a trailing newline of the template is not
      const learnable = message.role === "assistant" ? assistantSpan(added, tokenizer.encode("\n", { addSpecialTokens: false })) : 0;
      labels.push(...added.map((id, k) => (k < learnable ? id : -100)));
      renderedTokens = upTo;
    }
    let result: EncodedConversation | null = { ids, labels };
    if (ids.length > this.options.maxLength) {
      const lastImageToken = ids.lastIndexOf(processor.imageTokenId);
      if (lastImageToken >= this.options.maxLength) {
        if (!this.options.skipTruncated) {
          throw new Error(
            `${sample.key}: ${ids.length} tokens, and data.max_length ${this.options.maxLength} would cut inside its image tokens (the last one is at ${lastImageToken}); ` +
              "raise max_length, use fewer frames, or set generation.skip_truncated: true to skip such samples",
          );
        }
        this.skipped.add(sample.key);
        result = null;
      } else {
        result = { ids: ids.slice(0, this.options.maxLength), labels: labels.slice(0, this.options.maxLength) };
      }
    }
    this.#encoded.set(sample.key, result);
    return result;
  }

  /** Right-padded ids, mask and labels of the batch's usable samples. */
  #collate(samples: ConversationSample[]): { inputs: { input_ids: Tensor; attention_mask: Tensor; labels: Tensor; pixel_values?: Tensor } | null; used: ConversationSample[] } {
    const used: ConversationSample[] = [];
    const rows: EncodedConversation[] = [];
    for (const sample of samples) {
      const encoded = this.encode(sample);
      if (encoded) {
        used.push(sample);
        rows.push(encoded);
      }
    }
    if (rows.length === 0) return { inputs: null, used };
    const length = Math.max(...rows.map((r) => r.ids.length));
    const pad = this.vlm.tokenizer.padTokenId ?? 0;
    const device = this.vlm.device;
    const ids = rows.map((r) => [...r.ids, ...new Array<number>(length - r.ids.length).fill(pad)]);
    const mask = rows.map((r) => [...r.ids.map(() => 1), ...new Array<number>(length - r.ids.length).fill(0)]);
    const labels = rows.map((r) => [...r.labels, ...new Array<number>(length - r.labels.length).fill(-100)]);
    const images = used.flatMap((s) => s.images);
    const inputs: { input_ids: Tensor; attention_mask: Tensor; labels: Tensor; pixel_values?: Tensor } = {
      input_ids: tensor(ids, { dtype: "int64", device }),
      attention_mask: tensor(mask, { dtype: "int64", device }),
      labels: tensor(labels, { dtype: "int64", device }),
    };
    // text-only conversations have no images to encode
    if (images.length > 0) inputs.pixel_values = this.vlm.processor.imageProcessor.preprocess(images, { device }).pixel_values;
    return { inputs, used };
  }

  loss(batch: SampleBatch<ConversationSample>): LossOutput {
    const { inputs } = this.#collate(batch.samples);
    if (!inputs) throw new Error(`every sample of this batch was skipped (${batch.samples.map((s) => s.key).join(", ")}); check data.max_length`);
    const out = this.vlm.model.forward(inputs);
    // token accuracy on the learned positions (logits at t predict t+1)
    const predicted = out.logits.narrow(1, 0, out.logits.shape[1] - 1).argmax(-1);
    const target = inputs.labels.narrow(1, 1, inputs.labels.shape[1] - 1);
    const learned = target.ne(-100);
    const correct = predicted.eq(target).logicalAnd(learned).sum().item();
    return { loss: out.loss!, correct, total: learned.sum().item() };
  }

  evaluate(data: DataSource<SampleBatch<ConversationSample>>, batchSize: number): Record<string, number> {
    let lossSum = 0;
    let tokens = 0;
    let correct = 0;
    for (const batch of batchesOf(data, batchSize)) {
      tidy(() => {
        const { inputs } = this.#collate(batch.samples);
        if (!inputs) return;
        const out = this.vlm.model.forward(inputs);
        const target = inputs.labels.narrow(1, 1, inputs.labels.shape[1] - 1);
        const learned = target.ne(-100);
        const count = learned.sum().item();
        lossSum += out.loss!.item() * count;
        tokens += count;
        correct += out.logits.narrow(1, 0, out.logits.shape[1] - 1).argmax(-1).eq(target).logicalAnd(learned).sum().item();
      });
    }
    return { loss: lossSum / Math.max(1, tokens), token_accuracy: correct / Math.max(1, tokens) };
  }

  checkpointTensors(): Map<string, Tensor> {
    const tensors = new Map<string, Tensor>();
    for (const [name, p] of this.vlm.model.namedParameters()) if (p.requiresGrad) tensors.set(`model.${name}`, p);
    return tensors;
  }

  loadCheckpointTensors(tensors: Map<string, Tensor>): void {
    loadNamedTensors({ model: this.vlm.model }, tensors);
  }
}

/** How many of an assistant message's tokens are learned: all but a trailing newline the template adds. */
function assistantSpan(added: number[], newline: number[]): number {
  if (newline.length > 0 && added.length >= newline.length && newline.every((id, k) => added[added.length - newline.length + k] === id)) {
    return added.length - newline.length;
  }
  return added.length;
}
