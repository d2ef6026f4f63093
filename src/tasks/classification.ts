// Classification with a head on pooled hidden states of the VLM's language model for a prompt (images + question).
// With a frozen backbone the features of each sample are computed once and kept in memory, and on disk in a
// FeatureCache when one is given, so epochs (and later runs) train the head alone.
import { join } from "node:path";
import { F, buildInfo, keep, noGrad, stack, tensor, tidy, type Tensor } from "../torch/index.js";
import type { Module } from "../torch/nn/index.js";
import { ItemProgress, type DataSource, type LossOutput } from "../train/index.js";
import { DEFAULT_QUESTION, PROCESSOR_FILES, type VisionLanguageModel } from "../models/vlm.js";
import { ClassificationHead, poolHidden, type Pooling } from "./classification_head.js";
import { FeatureCache, FileHasher, folderFileHashes, modelFolderIdentity, sha256, tensorDigest } from "./feature_cache.js";
import { classifierReport, scoreMetrics, topPredictions, type ClassificationEvaluation, type ClassPrediction, type ScoredSamples } from "../eval/reports.js";
import { SampleSource, batchesOf, type SampleBatch, type VisualSample } from "./samples.js";
import { loadNamedTensors } from "./checkpoint_tensors.js";
import type { PrepareOptions, ReportOptions, Task } from "./task.js";

export interface ClassificationTaskOptions {
  /** The class names in index order. */
  labels: string[];
  /** The question shown with each sample's images (default "What is in the image?"). */
  question?: string;
  /** Token limit of one prompt (images + question); a longer one is an error, never cut inside its images (default 2048). */
  maxLength?: number;
  /** Token pooling (default "last"). */
  pooling?: Pooling;
  /** Which hidden state feeds the head: -1 the last (default), 0 the embeddings. */
  hiddenLayer?: number;
  /** Hidden size of the two-layer head; 0 = a single Linear (default 256). */
  headHiddenSize?: number;
  headDropout?: number;
  /** Default: true when no parameter of the model trains (features are then computed once per sample). */
  frozenBackbone?: boolean;
  /** With a frozen backbone, keep each sample's features (default true). */
  cacheFeatures?: boolean;
  /** Where cached features persist between runs (samples with `media` only); null or absent: this task only. */
  store?: FeatureCache | null;
  /** Standardize features with the training set's mean and std before the head (default true; see prepare). */
  normalizeFeatures?: boolean;
  /** k of top-k accuracy and of predictions (default 5). */
  topK?: number;
  /** Classes whose accuracy the report lists on its own. */
  priorityClasses?: string[];
}

type ResolvedOptions = Required<Omit<ClassificationTaskOptions, "store" | "priorityClasses">> & Pick<ClassificationTaskOptions, "store" | "priorityClasses">;

/** How many samples warmCache computes between writes to the store, so an interrupted run keeps most of its work. */
const SAVE_EVERY = 4096;

const FEATURE_MEAN = "feature_norm.mean";
const FEATURE_STD = "feature_norm.std";

/** A head on pooled hidden states of the VLM for the prompt (images + question). */
export class ClassificationTask implements Task<SampleBatch> {
  readonly kind = "classification";
  readonly head: ClassificationHead;
  readonly options: ResolvedOptions;
  readonly #cache = new Map<string, Tensor>();
  // Pooled hidden states share a large common component and differ little between classes; standardizing them
  // (as linear probes do with a non-affine BatchNorm) makes the head train in a few epochs instead of stalling.
  #featureMean: Tensor | null = null;
  #featureStd: Tensor | null = null;
  /** Samples whose features were computed (for the report: cached work is not redone). */
  featureComputations = 0;

  constructor(
    readonly vlm: VisionLanguageModel,
    options: ClassificationTaskOptions,
  ) {
    if (!Array.isArray(options.labels) || options.labels.length < 2) throw new Error(`ClassificationTask: labels must name at least two classes, got ${JSON.stringify(options.labels)}`);
    this.options = {
      labels: options.labels,
      question: options.question ?? DEFAULT_QUESTION,
      maxLength: options.maxLength ?? 2048,
      pooling: options.pooling ?? "last",
      hiddenLayer: options.hiddenLayer ?? -1,
      headHiddenSize: options.headHiddenSize ?? 256,
      headDropout: options.headDropout ?? 0.1,
      frozenBackbone: options.frozenBackbone ?? vlm.model.parameters().every((p) => !p.requiresGrad),
      cacheFeatures: options.cacheFeatures ?? true,
      store: options.store,
      normalizeFeatures: options.normalizeFeatures ?? true,
      topK: options.topK ?? 5,
      priorityClasses: options.priorityClasses,
    };
    this.head = new ClassificationHead({
      inputSize: vlm.components().language.width,
      numClasses: options.labels.length,
      hiddenSize: this.options.headHiddenSize,
      dropout: this.options.headDropout,
    }).to({ device: vlm.device });
  }

  get labels(): string[] {
    return this.options.labels;
  }

  trainableModules(): Module[] {
    return this.options.frozenBackbone ? [this.head] : [this.vlm.model, this.head];
  }

  trainableModuleNames(): string[] {
    return this.options.frozenBackbone ? ["head"] : ["model", "head"];
  }

  /** Pooled features [batch, hidden] of the samples, through the backbone. */
  #computeFeatures(samples: VisualSample[]): Tensor {
    this.featureComputations += samples.length;
    return tidy(() => {
      const inputs = this.vlm.encodePrompts(samples.map((s) => ({ images: s.images, question: this.options.question })));
      this.#checkLength(samples, inputs.attention_mask);
      const hidden = this.vlm.hiddenStates(inputs, this.options.hiddenLayer);
      return poolHidden(hidden, inputs.attention_mask, this.options.pooling).float();
    });
  }

  /** A prompt over maxLength tokens is refused, naming the sample: cutting it would drop image tokens or the question. */
  #checkLength(samples: VisualSample[], attentionMask: Tensor): void {
    if (attentionMask.shape[1] <= this.options.maxLength) return;
    const lengths = tidy(() => attentionMask.sum(1).toArray() as number[]);
    const longest = lengths.indexOf(Math.max(...lengths));
    throw new Error(
      `${samples[longest].key}: the prompt is ${lengths[longest]} tokens (${samples[longest].images.length} image(s) and the question), over data.max_length ${this.options.maxLength}; ` +
        "raise data.max_length or use fewer frames",
    );
  }

  get #caching(): boolean {
    return this.options.frozenBackbone && this.options.cacheFeatures;
  }

  /** Features of the samples (standardized once prepare ran): from the cache when the backbone is frozen. */
  features(samples: VisualSample[]): Tensor {
    return tidy(() => {
      const raw = this.#rawFeatures(samples);
      // no copy on the hot path when there is nothing to standardize by
      return this.#featureMean && this.#featureStd ? this.normalize(raw) : raw;
    });
  }

  /** Pooled features standardized with the training set's statistics (unchanged before prepare). */
  normalize(raw: Tensor): Tensor {
    return tidy(() => (this.#featureMean && this.#featureStd ? raw.sub(this.#featureMean).div(this.#featureStd) : raw.clone()));
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
   * Before training or scoring: caches the features of every sample (frozen backbone: loaded from the store, or
   * computed and added to it), then, unless a checkpoint set them, takes the feature standardization from the first
   * data source (the training set).
   */
  prepare(data: DataSource<SampleBatch>[], options: PrepareOptions = {}): void {
    const log = options.log ?? (() => {});
    const batchSize = options.batchSize ?? 32;
    if (this.#caching) {
      const t0 = performance.now();
      let loaded = 0;
      let computed = 0;
      for (const source of data) {
        const counts = this.warmCache(source, batchSize, options.progress);
        loaded += counts.loaded;
        computed += counts.computed;
      }
      const where = this.options.store ? ` (cache ${this.options.store.folder})` : "";
      log(`features: ${loaded} loaded from the cache, ${computed} computed through the frozen backbone, in ${((performance.now() - t0) / 1000).toFixed(1)} s${where}`);
    }
    // statistics loaded from a checkpoint stay: they are the ones the head was trained with
    if (data.length > 0 && !this.#featureMean) this.fitFeatureNorm(data[0], batchSize);
  }

  /**
   * Sets the feature standardization from up to maxSamples samples (all of them cost nothing more when cached).
   * With LoRA the statistics are those of the starting weights, fixed for the run.
   */
  fitFeatureNorm(data: DataSource<SampleBatch>, batchSize: number, maxSamples = 1024): void {
    if (!this.options.normalizeFeatures) return;
    const count = this.#caching ? data.length : Math.min(data.length, maxSamples);
    // one sample has no spread (its std is NaN): the features then go to the head as they are
    if (count < 2) return;
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
  warmCache(data: DataSource<SampleBatch>, batchSize: number, progress = true): { loaded: number; computed: number } {
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
    const bar = new ItemProgress("features", missing.length, { enabled: progress });
    for (let start = 0; start < missing.length; start += batchSize) {
      const chunk = missing.slice(start, start + batchSize);
      tidy(() => void this.#rawFeatures(chunk));
      bar.advance(chunk.length);
      if (!store) continue;
      for (const s of chunk) if (ids.has(s.key)) unsaved.set(ids.get(s.key)!, this.#cache.get(s.key)!);
      if (unsaved.size >= SAVE_EVERY) save();
    }
    bar.finish();
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
  scores(data: DataSource<SampleBatch>, batchSize: number, progress = false): ScoredSamples {
    const probabilities: number[][] = [];
    const yTrue: number[] = [];
    const sources: string[] = [];
    let lossSum = 0;
    const bar = new ItemProgress("scoring", data.length, { enabled: progress });
    noGrad(() => {
      for (const batch of batchesOf(data, batchSize)) {
        bar.advance(batch.size);
        tidy(() => {
          const logits = this.logits(batch.samples);
          const target = tensor(batch.samples.map((s) => s.labelIndex), { dtype: "int64", device: logits.device });
          lossSum += F.crossEntropy(logits, target, { reduction: "sum" }).item();
          probabilities.push(...(F.softmax(logits, -1).toArray() as number[][]));
          yTrue.push(...batch.samples.map((s) => s.labelIndex));
          sources.push(...batch.samples.map((s) => s.key));
        });
      }
    });
    bar.finish();
    return { sources, probabilities, yTrue, loss: lossSum / Math.max(1, yTrue.length) };
  }

  evaluate(data: DataSource<SampleBatch>, batchSize: number): Record<string, number> {
    const scores = this.scores(data, batchSize);
    return scoreMetrics(scores.probabilities, scores.yTrue, scores.loss, this.options.topK);
  }

  /** Scores the data in eval mode; with outDir, writes report.json, report.txt, confusion.csv/.png and predictions.jsonl. */
  report(data: DataSource<SampleBatch>, options: ReportOptions): ClassificationEvaluation {
    this.#evalMode();
    const scores = this.scores(data, options.batchSize ?? 32, options.progress ?? true);
    return classifierReport(scores, this.labels, { split: options.split, outDir: options.outDir, topK: this.options.topK, priorityClasses: this.options.priorityClasses });
  }

  /** The k most probable classes of each sample (samples need no class), in eval mode. */
  predict(samples: VisualSample[], k = this.options.topK, batchSize = 16): ClassPrediction[][] {
    this.#evalMode();
    const top = Math.min(k, this.labels.length);
    // the loss needs a class: any will do, only the probabilities are used
    const { probabilities } = this.scores(SampleSource.of(samples.map((s) => ({ ...s, labelIndex: 0 }))), batchSize);
    return probabilities.map((p) => topPredictions(p, this.labels, top));
  }

  #evalMode(): void {
    this.vlm.model.eval();
    this.head.eval();
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
    // Checkpoints are read on the CPU: the statistics go where the features are.
    if (mean && std) this.#setFeatureNorm(keep(mean.to({ device: this.vlm.device, copy: true })), keep(std.to({ device: this.vlm.device, copy: true })));
    const rest = new Map([...tensors].filter(([name]) => name !== FEATURE_MEAN && name !== FEATURE_STD));
    loadNamedTensors({ head: this.head, model: this.vlm.model }, rest);
    // weights changed: cached features stay valid only for a frozen backbone
    if (!this.options.frozenBackbone) this.clearCache();
  }

  clearCache(): void {
    for (const t of this.#cache.values()) t.dispose();
    this.#cache.clear();
  }

  /** Frees the head, the cache and the standardization (the model belongs to the caller). */
  dispose(): void {
    this.clearCache();
    this.#featureMean?.dispose();
    this.#featureStd?.dispose();
    this.#featureMean = this.#featureStd = null;
    this.head.dispose();
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

type FeatureSettings = Pick<ClassificationTaskOptions, "question" | "pooling" | "hiddenLayer">;

/**
 * Everything pooled features of a frozen backbone depend on besides the sample: the family and weights (by
 * content), dtype, device kind and libtorch version (numerics), LoRA tensors when the model has any, the processor's
 * files and parsed settings (image size, mean / std, resampling, tokenizer, chat template), the rendered prompt, and
 * the hidden layer and pooling.
 */
export function classificationFeatureIdentity(vlm: VisionLanguageModel, settings: FeatureSettings, weightsFolder: string, hasher: FileHasher): Record<string, unknown> {
  const parameters = vlm.model.namedParameters();
  const lora = parameters.filter(([name]) => name.includes(".lora_"));
  const question = settings.question ?? DEFAULT_QUESTION;
  const prompt = vlm.promptText(1, question);
  return {
    task: "vlm-classification",
    family: vlm.modelType,
    model: modelFolderIdentity(hasher, weightsFolder),
    dtype: parameters[0]?.[1].dtype ?? null,
    device: vlm.device.replace(/:\d+$/, ""),
    torch: buildInfo().torch,
    adapter: lora.length === 0 ? null : sha256(lora.map(([name, p]) => `${name}:${p.dtype}:[${p.shape}]:${tensorDigest(p)}`).join("\n")),
    processor: { files: folderFileHashes(hasher, vlm.folder, PROCESSOR_FILES), settings: vlm.processorSettings() },
    prompt: { question, text: prompt, ids: vlm.tokenizer.encode(prompt, { addSpecialTokens: false }) },
    hiddenLayer: settings.hiddenLayer ?? -1,
    pooling: settings.pooling ?? "last",
  };
}

/** The on-disk cache of a classification task's features (hashes the model's weight files on first use). */
export function openFeatureCache(vlm: VisionLanguageModel, settings: FeatureSettings, store: FeatureStoreOptions): FeatureCache {
  const hasher = new FileHasher(join(store.dir, "file-hashes.json"));
  const identity = classificationFeatureIdentity(vlm, settings, store.weightsFolder, hasher);
  return new FeatureCache(store.dir, identity, hasher, { numFrames: store.numFrames, log: store.log });
}
