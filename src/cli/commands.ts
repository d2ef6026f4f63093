// The work behind `vlmkit train | eval | predict | generate`: a run configuration in, a run folder out. Each step
// is a library call (records, models, adaptModel, the Trainer, metrics); this file only wires them together.
//
// A run folder holds: run.yaml (the resolved configuration), labels.json, model/ (the base weights when they were
// random), the Trainer's files (train_options.json, metrics.jsonl, tensorboard/, checkpoints/{best,last}/),
// adapter/ (PEFT files when a component used LoRA) and eval/<split>/ (report.json, report.txt, confusion.csv,
// confusion.png, predictions.jsonl). Features of a frozen backbone persist beside the runs (head.cache_dir, default
// <output_dir>/../.vlmkit-cache/features), so later runs and evals on the same model and data skip the backbone.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join, resolve } from "node:path";
import { dispose, manualSeed, readSafetensors } from "../torch/index.js";
import { ClassificationHead } from "../heads/classification.js";
import { adaptModel, saveAdapter, type AdaptationPlan, type ComponentAdaptation } from "../adapt/index.js";
import { readImageFolder, readJsonlRecords, readLabelMap, splitRecords, type LabeledRecord, type RecordSet } from "../data/records.js";
import { isFrameFolder } from "../data/frame_folder.js";
import { loadImage, type RgbImage } from "../data/image.js";
import { loadVideo } from "../data/video.js";
import { Trainer, type Batch, type DataSource, type TrainOptions, type TrainResult, type TrainTask } from "../train/index.js";
import { classificationReport, confusionMatrix, confusionMatrixCsv, formatClassificationReport, type ClassificationReport } from "../eval/metrics.js";
import { confusionMatrixPng } from "../eval/confusion_png.js";
import { parseAnswerToLabel } from "../eval/answers.js";
import { mergeConfigs, readRunConfig, runConfigToYaml, type AdaptationConfig, type RunConfig } from "./config.js";
import { DEFAULT_QUESTION, MediaCache, MediaError, generateAnswers, loadVlm, saveModelFolder, type LoadedVlm, type PromptItem } from "./vlm.js";
import { SampleSource, VlmClassificationTask, VlmSftTask, argmax, openFeatureCache, type ConversationSample, type VisualSample } from "./tasks.js";
import type { FeatureCache } from "../heads/feature_cache.js";
import { readConversationRecords, promptMessages, referenceAnswer, type ConversationRecord } from "./conversation_records.js";

export type Log = (line: string) => void;

// ---- the resolved configuration ----

/** Every default, so a run folder's run.yaml says exactly what ran. */
export const RUN_DEFAULTS: RunConfig = {
  task: "classification",
  data: { val_ratio: 0.2, skip_bad: false, num_frames: 8, prompt: DEFAULT_QUESTION, max_length: 512 },
  components: { vision: { mode: "frozen" }, projector: { mode: "frozen" }, language: { mode: "frozen" } },
  head: { pooling: "last", hidden_layer: -1, hidden_size: 256, dropout: 0.1, cache_features: true, normalize_features: true },
  generation: { max_new_tokens: 16, skip_truncated: false },
  epochs: 1,
  batch_size: 8,
  grad_accumulation: 1,
  learning_rate: 1e-4,
  weight_decay: 0.01,
  warmup_ratio: 0,
  schedule: "linear",
  eval_every: "epoch",
  seed: 42,
  progress: true,
  eval: { top_k: 5, priority_classes: [] },
};

/** The configuration with defaults filled in, checked for what a training run needs. */
export function resolveRunConfig(config: RunConfig): RunConfig {
  const resolved = mergeConfigs(RUN_DEFAULTS, config);
  resolved.best_metric ??= resolved.task === "generation" ? "loss" : "accuracy";
  const problems: string[] = [];
  if (!resolved.data?.train) problems.push("data.train is missing: the training records (a JSONL file or an image folder); --train <path>");
  if (!resolved.output_dir) problems.push("output_dir is missing: the run folder to write; --output <folder>");
  if (!resolved.model?.path && !resolved.model?.config) problems.push("the model is missing: model.path (--model <folder>) or model.config (--model-config <config.json>)");
  if (resolved.model?.path && resolved.model?.config) problems.push("give model.path or model.config, not both");
  if (resolved.task === "generation" && Object.values(resolved.components ?? {}).every((c) => (c?.mode ?? "frozen") === "frozen")) {
    problems.push("task generation with every component frozen trains nothing: set components.language.mode (lora or full) or another component's");
  }
  if (problems.length > 0) throw new Error(`the run configuration is incomplete:\n  ${problems.join("\n  ")}`);
  if (resolved.task === "classification" && resolved.head!.cache_dir === undefined) resolved.head!.cache_dir = defaultFeatureCacheDir(resolved.output_dir!);
  return resolved;
}

/** Beside the run folders, so that sibling runs share it. */
function defaultFeatureCacheDir(runDir: string): string {
  return join(dirname(runDir), ".vlmkit-cache", "features");
}

function adaptationPlan(config: RunConfig): AdaptationPlan {
  const plan: AdaptationPlan = {};
  for (const [component, c] of Object.entries(config.components ?? {}) as [keyof NonNullable<RunConfig["components"]>, AdaptationConfig | undefined][]) {
    if (!c) continue;
    const adaptation: ComponentAdaptation = { mode: c.mode ?? "frozen" };
    if (c.r !== undefined) adaptation.r = c.r;
    if (c.alpha !== undefined) adaptation.alpha = c.alpha;
    if (c.dropout !== undefined) adaptation.dropout = c.dropout;
    if (c.rslora !== undefined) adaptation.rslora = c.rslora;
    if (c.target_modules !== undefined) adaptation.targetModules = c.target_modules;
    plan[component] = adaptation;
  }
  return plan;
}

const isFrozen = (config: RunConfig) => Object.values(config.components ?? {}).every((c) => (c?.mode ?? "frozen") === "frozen");
const usesLora = (config: RunConfig) => Object.values(config.components ?? {}).some((c) => c?.mode === "lora");

function trainOptions(config: RunConfig, log?: Log): TrainOptions {
  return {
    epochs: config.epochs,
    maxSteps: config.max_steps ?? undefined,
    batchSize: config.batch_size!,
    evalBatchSize: config.eval_batch_size,
    gradAccumulation: config.grad_accumulation,
    lr: config.learning_rate!,
    weightDecay: config.weight_decay,
    warmupSteps: config.warmup_steps ?? undefined,
    warmupRatio: config.warmup_ratio,
    schedule: config.schedule,
    maxGradNorm: config.max_grad_norm ?? undefined,
    autocast: config.autocast ?? null,
    evalEvery: config.eval_every,
    bestMetric: config.best_metric,
    bestMode: config.best_mode,
    earlyStoppingPatience: config.early_stopping_patience ?? undefined,
    seed: config.seed,
    outputDir: config.output_dir!,
    resume: config.resume ?? false,
    overwrite: config.overwrite ?? false,
    progress: config.progress,
    paramGroups: config.param_groups?.map((g) => ({ name: g.name ?? g.match ?? "group", match: g.match ?? ".*", lr: g.lr, weightDecay: g.weight_decay })),
    log,
  };
}

// ---- records ----

function configuredLabels(config: RunConfig): string[] | undefined {
  const labels = config.data?.labels;
  if (labels === undefined) return undefined;
  return typeof labels === "string" ? readLabelMap(resolve(labels)) : labels;
}

/** Labeled records of a JSONL file or an image folder. */
export function readLabeledRecords(path: string, labels: string[] | undefined, skipBad: boolean): RecordSet {
  const resolved = resolve(path);
  if (!existsSync(resolved)) throw new Error(`${path}: no such file or folder`);
  return isFrameFolder(resolved) && !resolved.endsWith(".jsonl") ? readImageFolder(resolved, { labels, skipBad }) : readJsonlRecords(resolved, { labels, skipBad });
}

/**
 * With skip_bad, records whose media cannot be decoded are dropped and reported like other bad records (this
 * decodes every record's media up front, which MediaCache keeps for the epochs); without it they stay, and the
 * first one fails the run with an error naming its file:line.
 */
function keepDecodable<R extends { images?: string[]; video?: string; source: string }>(records: R[], media: MediaCache, skipBad: boolean, log: Log): R[] {
  if (!skipBad) return records;
  const skipped: { source: string; reason: string }[] = [];
  const kept = records.filter((record) => {
    if (!record.images && !record.video) return true;
    try {
      media.get(record);
      return true;
    } catch (error) {
      if (!(error instanceof MediaError)) throw error;
      skipped.push({ source: record.source, reason: error.reason });
      return false;
    }
  });
  reportSkipped(skipped, log);
  return kept;
}

function reportSkipped(skipped: { source: string; reason: string }[], log: Log): void {
  if (skipped.length === 0) return;
  log(`skipped ${skipped.length} bad record(s):`);
  for (const s of skipped.slice(0, 20)) log(`  ${s.source}: ${s.reason}`);
  if (skipped.length > 20) log(`  ... and ${skipped.length - 20} more`);
}

function classificationSource(records: LabeledRecord[], media: MediaCache): SampleSource {
  return new SampleSource(records.length, (i) => {
    const record = records[i];
    // decoded on first use only: a sample whose features are cached is never decoded
    return { key: record.source, get images() { return media.get(record); }, labelIndex: record.labelIndex, media: record.video ? [record.video] : record.images };
  });
}

/** The messages of a conversation with a video's frames as image placeholders (one <video> or none becomes n <image>). */
function withFramePlaceholders(record: ConversationRecord, frames: number, imageToken: string): ConversationRecord["messages"] {
  if (!record.video) return record.messages;
  const count = record.messages.reduce((n, m) => n + m.content.split(imageToken).length - 1 + m.content.split("<video>").length - 1, 0);
  if (count > 1) throw new Error(`${record.source}: a video row takes one <video> (or <image>) placeholder, found ${count}`);
  const frameTokens = imageToken.repeat(frames);
  const messages = record.messages.map((m) => ({ ...m, content: m.content.replace("<video>", frameTokens).replace(imageToken, frameTokens) }));
  if (count === 0) {
    const first = messages.find((m) => m.role === "user");
    if (first) first.content = `${frameTokens}\n${first.content}`;
  }
  return messages;
}

interface ConversationSet {
  samples: (i: number) => ConversationSample & { record: ConversationRecord };
  records: ConversationRecord[];
}

function conversationSamples(records: ConversationRecord[], media: MediaCache, labels: string[], imageToken: string): ConversationSet {
  const cache = new Map<number, ConversationSample & { record: ConversationRecord }>();
  return {
    records,
    samples: (i) => {
      let sample = cache.get(i);
      if (!sample) {
        const record = records[i];
        const images = record.images || record.video ? media.get({ images: record.images, video: record.video, source: record.source }) : [];
        const label = record.label ?? parseAnswerToLabel(referenceAnswer(record), labels).label;
        sample = { key: record.source, images, labelIndex: label === null ? -1 : labels.indexOf(label), messages: withFramePlaceholders(record, images.length, imageToken), record };
        cache.set(i, sample);
      }
      return sample;
    },
  };
}

// ---- training ----

export interface ClassificationEvaluation {
  split: string;
  report: ClassificationReport;
  text: string;
  metrics: Record<string, number>;
}

export interface TrainSummary {
  runDir: string;
  task: "classification" | "generation";
  labels: string[];
  train: TrainResult;
  /** The held-out report of the best checkpoint. */
  evaluation: ClassificationEvaluation | null;
  seconds: number;
  /** Samples whose backbone features were computed (a frozen backbone computes each once). */
  featureComputations?: number;
}

/** Trains as the configuration says and evaluates the best checkpoint on the validation records. */
export async function trainRun(input: RunConfig, log: Log = console.log): Promise<TrainSummary> {
  const started = performance.now();
  const config = resolveRunConfig(input);
  const runDir = resolve(config.output_dir!);
  const data = config.data!;
  mkdirSync(runDir, { recursive: true });
  const media = new MediaCache(data.num_frames!);

  const vlm = await loadVlm(config);
  try {
    if (vlm.randomInit) {
      // the base weights are random: keep them, or the adapter and head could never be used again
      saveModelFolder(vlm.model, vlm.folder, join(runDir, "model"));
    }
    vlm.model.freeze();
    if (!isFrozen(config)) adaptModel(vlm.model, adaptationPlan(config), log);
    manualSeed(config.seed!);

    if (config.task === "generation") return await trainGeneration(config, vlm, media, runDir, log, started);

    const labels = configuredLabels(config);
    const train = readLabeledRecords(data.train!, labels, data.skip_bad!);
    reportSkipped(train.skipped, log);
    train.records = keepDecodable(train.records, media, data.skip_bad!, log);
    let trainRecords = train.records;
    let valRecords: LabeledRecord[];
    if (data.val) {
      const val = readLabeledRecords(data.val, train.labels, data.skip_bad!);
      reportSkipped(val.skipped, log);
      valRecords = keepDecodable(val.records, media, data.skip_bad!, log);
    } else {
      const split = splitRecords(train.records, data.val_ratio!, config.seed!);
      trainRecords = split.train;
      valRecords = split.val;
    }
    writeRunFiles(runDir, config, train.labels);
    log(`data: ${trainRecords.length} training and ${valRecords.length} validation records, ${train.labels.length} classes`);

    const store = featureStore(config, vlm, vlm.randomInit ? join(runDir, "model") : vlm.folder, log);
    const task = classificationTask(config, vlm, train.labels.length, store);
    const trainData = classificationSource(trainRecords, media);
    const valData = valRecords.length > 0 ? classificationSource(valRecords, media) : null;
    if (task.options.frozenBackbone && task.options.cacheFeatures) {
      warmFeatures(task, [trainData, ...(valData ? [valData] : [])], config, log);
      log("epochs train the head only");
    }
    task.fitFeatureNorm(trainData, config.eval_batch_size ?? Math.max(config.batch_size!, 32));
    try {
      const result = await fit(task, trainData, valData, config, log);
      loadBest(task, result);
      if (usesLora(config)) saveAdapter(vlm.model, join(runDir, "adapter"), vlm.randomInit ? join(runDir, "model") : resolve(config.model!.path!));
      const evaluation = valData ? evaluateClassification(task, valData, valRecords, train.labels, config, join(runDir, "eval", "val"), "val") : null;
      if (evaluation) log(`held-out (val) report, best checkpoint:\n${evaluation.text}`);
      return { runDir, task: "classification", labels: train.labels, train: result, evaluation, seconds: (performance.now() - started) / 1000, featureComputations: task.featureComputations };
    } finally {
      task.dispose();
      task.head.dispose();
    }
  } finally {
    vlm.model.dispose();
  }
}

/** Runs the Trainer and frees its optimizer state (the weights stay with the task). */
async function fit<B extends Batch>(task: TrainTask<B>, trainData: DataSource<B>, valData: DataSource<B> | null, config: RunConfig, log: Log): Promise<TrainResult> {
  const trainer = new Trainer(task, trainData, valData, trainOptions(config, config.progress === false ? log : undefined));
  try {
    return await trainer.fit();
  } finally {
    trainer.optimizer.dispose();
  }
}

function writeRunFiles(runDir: string, config: RunConfig, labels: string[]): void {
  writeFileSync(join(runDir, "run.yaml"), runConfigToYaml(config, "resolved run configuration (vlmkit train --config this-file reruns it)"));
  writeFileSync(join(runDir, "labels.json"), JSON.stringify(labels, null, 2) + "\n");
}

/** The on-disk feature cache of a frozen classification run, or null (not frozen, caching off, head.cache_dir null). */
function featureStore(config: RunConfig, vlm: LoadedVlm, weightsFolder: string, log: Log): FeatureCache | null {
  const head = config.head ?? {};
  if (config.task === "generation" || !isFrozen(config) || head.cache_features === false || !head.cache_dir) return null;
  const options = { question: config.data?.prompt ?? DEFAULT_QUESTION, pooling: head.pooling ?? "last", hiddenLayer: head.hidden_layer ?? -1 };
  return openFeatureCache(vlm, options, { dir: resolve(head.cache_dir), weightsFolder, numFrames: config.data?.num_frames ?? 8, log });
}

/** Loads the cached features of the samples and computes the rest, and says how many of each. */
function warmFeatures(task: VlmClassificationTask, sources: SampleSource[], config: RunConfig, log: Log): void {
  const t0 = performance.now();
  let loaded = 0;
  let computed = 0;
  for (const source of sources) {
    const counts = task.warmCache(source, config.eval_batch_size ?? Math.max(config.batch_size!, 32));
    loaded += counts.loaded;
    computed += counts.computed;
  }
  const where = task.options.store ? ` (cache ${task.options.store.folder})` : "";
  log(`features: ${loaded} loaded from the cache, ${computed} computed through the frozen backbone, in ${((performance.now() - t0) / 1000).toFixed(1)} s${where}`);
}

function classificationTask(config: RunConfig, vlm: LoadedVlm, numClasses: number, store: FeatureCache | null = null): VlmClassificationTask {
  const head = new ClassificationHead({
    inputSize: vlm.model.getInputEmbeddings().embeddingDim,
    numClasses,
    hiddenSize: config.head!.hidden_size,
    dropout: config.head!.dropout,
  }).to(vlm.device);
  return new VlmClassificationTask(vlm, head, {
    question: config.data!.prompt!,
    pooling: config.head!.pooling!,
    hiddenLayer: config.head!.hidden_layer!,
    frozenBackbone: isFrozen(config),
    cacheFeatures: config.head!.cache_features!,
    store,
    normalizeFeatures: config.head!.normalize_features!,
    topK: config.eval!.top_k!,
  });
}

/** Puts the best checkpoint's weights (else the last's) into the task's live tensors. */
function loadBest(task: { loadCheckpointTensors(t: Map<string, import("../torch/index.js").Tensor>): void }, result: { best: { dir: string } | null; lastCheckpoint: string }): void {
  const dir = result.best?.dir ?? result.lastCheckpoint;
  const tensors = readSafetensors(join(dir, "weights.safetensors"));
  try {
    task.loadCheckpointTensors(tensors);
  } finally {
    dispose([...tensors.values()]);
  }
}

/** Scores the task on records and writes report.json, report.txt, confusion.csv/.png and predictions.jsonl to outDir. */
export function evaluateClassification(
  task: VlmClassificationTask, data: SampleSource, records: LabeledRecord[], labels: string[], config: RunConfig, outDir: string, split: string,
): ClassificationEvaluation {
  for (const m of task.trainableModules()) m.eval();
  task.vlm.model.eval();
  const batchSize = config.eval_batch_size ?? Math.max(config.batch_size!, 32);
  const scores = task.scores(data, batchSize);
  const metrics = task.metrics(scores);
  const yPred = scores.probabilities.map(argmax);
  const report = classificationReport(scores.yTrue, yPred, labels, { priorityClasses: config.eval?.priority_classes });
  const text = formatClassificationReport(report);
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "report.json"), JSON.stringify({ split, metrics, report }, null, 2) + "\n");
  writeFileSync(join(outDir, "report.txt"), text);
  writeConfusion(outDir, confusionMatrix(scores.yTrue, yPred, labels.length), labels);
  const k = Math.min(config.eval?.top_k ?? 5, labels.length);
  writeFileSync(
    join(outDir, "predictions.jsonl"),
    records.map((r, i) => JSON.stringify({ source: r.source, label: r.label, predictions: topPredictions(scores.probabilities[i], labels, k) })).join("\n") + "\n",
  );
  return { split, report, text, metrics };
}

/** confusion.csv and the same matrix as a heatmap, confusion.png. */
function writeConfusion(outDir: string, matrix: number[][], labels: string[]): void {
  writeFileSync(join(outDir, "confusion.csv"), confusionMatrixCsv(matrix, labels));
  writeFileSync(join(outDir, "confusion.png"), confusionMatrixPng(matrix, labels));
}

export function topPredictions(probabilities: number[], labels: string[], k: number): { label: string; probability: number }[] {
  return probabilities
    .map((probability, index) => ({ label: labels[index], probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k)
    .map((p) => ({ label: p.label, probability: Number(p.probability.toFixed(6)) }));
}

// ---- generative fine-tuning ----

function readConversations(path: string, config: RunConfig, imageToken: string, media: MediaCache, log: Log): ConversationRecord[] {
  const { records, skipped } = readConversationRecords(resolve(path), { imageToken, skipBad: config.data!.skip_bad });
  reportSkipped(skipped, log);
  return keepDecodable(records, media, config.data!.skip_bad!, log);
}

async function trainGeneration(config: RunConfig, vlm: LoadedVlm, media: MediaCache, runDir: string, log: Log, started: number): Promise<TrainSummary> {
  const data = config.data!;
  const imageToken = vlm.processor.imageToken;
  const trainAll = readConversations(data.train!, config, imageToken, media, log);
  let trainRecords = trainAll;
  let valRecords: ConversationRecord[];
  if (data.val) valRecords = readConversations(data.val, config, imageToken, media, log);
  else ({ train: trainRecords, val: valRecords } = splitRecords(trainAll, data.val_ratio!, config.seed!));
  const labels = configuredLabels(config) ?? [...new Set([...trainAll, ...valRecords].map((r) => r.label).filter((l): l is string => l !== undefined))].sort();
  writeRunFiles(runDir, config, labels);
  log(`data: ${trainRecords.length} training and ${valRecords.length} validation conversations${labels.length ? `, answers scored against ${labels.length} classes` : ""}`);

  const task = new VlmSftTask(vlm, { maxLength: data.max_length!, skipTruncated: config.generation!.skip_truncated! });
  const train = conversationSamples(trainRecords, media, labels, imageToken);
  const val = conversationSamples(valRecords, media, labels, imageToken);
  const trainData = new SampleSource(trainRecords.length, train.samples);
  const valData = valRecords.length > 0 ? new SampleSource(valRecords.length, val.samples) : null;
  const result = await fit(task, trainData, valData, config, log);
  loadBest(task, result);
  if (task.skipped.size > 0) log(`skipped ${task.skipped.size} sample(s) whose text would be cut inside the image tokens (generation.skip_truncated)`);
  if (usesLora(config)) saveAdapter(vlm.model, join(runDir, "adapter"), vlm.randomInit ? join(runDir, "model") : resolve(config.model!.path!));
  const evaluation = valData && labels.length > 1 ? evaluateGeneration(vlm, valRecords.map((_, i) => val.samples(i)), labels, config, join(runDir, "eval", "val"), "val") : null;
  if (evaluation) log(`held-out (val) report of the generated answers, best checkpoint:\n${evaluation.text}`);
  return { runDir, task: "generation", labels, train: result, evaluation, seconds: (performance.now() - started) / 1000 };
}

/** Generates an answer per sample, parses it to a class, and writes the report and answers.jsonl to outDir. */
export function evaluateGeneration(
  vlm: LoadedVlm, samples: (ConversationSample & { record: ConversationRecord })[], labels: string[], config: RunConfig, outDir: string, split: string,
): ClassificationEvaluation {
  vlm.model.eval();
  const batchSize = config.eval_batch_size ?? Math.max(config.batch_size!, 32);
  const answers: string[] = [];
  for (let start = 0; start < samples.length; start += batchSize) {
    const chunk = samples.slice(start, start + batchSize);
    const items: PromptItem[] = chunk.map((s) => ({ images: s.images, messages: promptMessages({ messages: s.messages }) }));
    answers.push(...generateAnswers(vlm, items, config.generation!.max_new_tokens!));
  }
  const parsed = answers.map((a) => parseAnswerToLabel(a, labels));
  const yTrue = samples.map((s) => s.labelIndex);
  const kept = yTrue.map((y, i) => [y, i] as const).filter(([y]) => y >= 0).map(([, i]) => i);
  const report = classificationReport(kept.map((i) => yTrue[i]), kept.map((i) => parsed[i].index), labels, { priorityClasses: config.eval?.priority_classes });
  const how = { exact: 0, normalised: 0, closest: 0, unparseable: 0 } as Record<string, number>;
  for (const p of parsed) how[p.how]++;
  const metrics = { accuracy: report.accuracy, unparseable: how.unparseable / Math.max(1, parsed.length) };
  const text = formatClassificationReport(report) + `answers parsed: ${how.exact} exact, ${how.normalised} normalised, ${how.closest} closest, ${how.unparseable} unparseable\n`;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "report.json"), JSON.stringify({ split, metrics, parsed: how, report }, null, 2) + "\n");
  writeFileSync(join(outDir, "report.txt"), text);
  writeConfusion(outDir, confusionMatrix(kept.map((i) => yTrue[i]), kept.map((i) => parsed[i].index), labels.length), labels);
  writeFileSync(
    join(outDir, "answers.jsonl"),
    samples.map((s, i) => JSON.stringify({ source: s.key, reference: referenceAnswer(s.record), answer: answers[i], parsed: parsed[i].label, how: parsed[i].how })).join("\n") + "\n",
  );
  return { split, report, text, metrics };
}

// ---- using a finished run ----

export interface LoadedRun {
  runDir: string;
  config: RunConfig;
  labels: string[];
  vlm: LoadedVlm;
  /** The classification task (classification runs) with the best weights loaded. */
  classification: VlmClassificationTask | null;
  dispose(): void;
}

/**
 * Rebuilds a run's model (base, adapters, head) with its best checkpoint's weights; with featureCache, a frozen
 * classification run's task reads and adds to the on-disk feature cache.
 */
export async function loadRun(runDir: string, overrides: RunConfig = {}, options: { featureCache?: boolean; log?: Log } = {}): Promise<LoadedRun> {
  const dir = resolve(runDir);
  const runFile = join(dir, "run.yaml");
  if (!existsSync(runFile)) throw new Error(`${dir} is not a run folder (no run.yaml); give the output_dir of \`vlmkit train\``);
  let config = mergeConfigs(readRunConfig(runFile), overrides);
  if (existsSync(join(dir, "model", "config.json"))) config = mergeConfigs(config, { model: { path: join(dir, "model"), config: undefined } });
  if (config.model?.config === undefined) delete config.model?.config;
  const labels = readLabelMap(join(dir, "labels.json"));
  const vlm = await loadVlm(config);
  vlm.model.freeze();
  if (!isFrozen(config)) adaptModel(vlm.model, adaptationPlan(config));
  const best = join(dir, "checkpoints", "best", "weights.safetensors");
  const last = join(dir, "checkpoints", "last", "weights.safetensors");
  const weights = existsSync(best) ? best : last;
  if (!existsSync(weights)) {
    vlm.model.dispose();
    throw new Error(`${dir} has no checkpoint (checkpoints/best or checkpoints/last); did training finish?`);
  }
  let classification: VlmClassificationTask | null = null;
  const tensors = readSafetensors(weights);
  try {
    if (config.task === "generation") {
      new VlmSftTask(vlm, { maxLength: config.data?.max_length ?? 512, skipTruncated: false }).loadCheckpointTensors(tensors);
    } else {
      const cacheConfig = config.head?.cache_dir === undefined ? mergeConfigs(config, { head: { cache_dir: defaultFeatureCacheDir(dir) } }) : config;
      const store = options.featureCache ? featureStore(cacheConfig, vlm, vlm.folder, options.log ?? console.log) : null;
      classification = classificationTask(config, vlm, labels.length, store);
      classification.loadCheckpointTensors(tensors);
      classification.head.eval();
    }
  } catch (error) {
    vlm.model.dispose();
    throw error;
  } finally {
    dispose([...tensors.values()]);
  }
  vlm.model.eval();
  return {
    runDir: dir, config, labels, vlm, classification,
    dispose: () => {
      classification?.dispose();
      classification?.head.dispose();
      vlm.model.dispose();
    },
  };
}

/**
 * `vlmkit eval`: scores a finished run on records (default: its data.test, else data.val, else the split it held
 * out). cacheDir overrides the run's head.cache_dir (null: no on-disk feature cache).
 */
export async function evalRun(runDir: string, options: { data?: string; split?: string; cacheDir?: string | null } = {}, log: Log = console.log): Promise<ClassificationEvaluation> {
  const overrides: RunConfig = options.cacheDir === undefined ? {} : { head: { cache_dir: options.cacheDir } };
  const run = await loadRun(runDir, overrides, { featureCache: true, log });
  try {
    const config = resolveRunConfig(run.config);
    const data = config.data!;
    const path = options.data ?? data.test ?? data.val ?? undefined;
    const split = options.split ?? (options.data ? basename(options.data, extname(options.data)) : data.test ? "test" : "val");
    const outDir = join(run.runDir, "eval", split);
    const media = new MediaCache(data.num_frames!);
    if (config.task === "generation") {
      const imageToken = run.vlm.processor.imageToken;
      let records = path ? readConversations(path, config, imageToken, media, log) : splitRecords(readConversations(data.train!, config, imageToken, media, log), data.val_ratio!, config.seed!).val;
      if (records.length === 0) throw new Error("no records to evaluate");
      const set = conversationSamples(records, media, run.labels, imageToken);
      records = set.records;
      return evaluateGeneration(run.vlm, records.map((_, i) => set.samples(i)), run.labels, config, outDir, split);
    }
    let records: LabeledRecord[];
    if (path) {
      const set = readLabeledRecords(path, run.labels, data.skip_bad!);
      reportSkipped(set.skipped, log);
      records = keepDecodable(set.records, media, data.skip_bad!, log);
    } else {
      records = splitRecords(readLabeledRecords(data.train!, run.labels, data.skip_bad!).records, data.val_ratio!, config.seed!).val;
    }
    if (records.length === 0) throw new Error("no records to evaluate");
    const task = run.classification!;
    const source = classificationSource(records, media);
    if (task.options.frozenBackbone && task.options.cacheFeatures) warmFeatures(task, [source], config, log);
    return evaluateClassification(task, source, records, run.labels, config, outDir, split);
  } finally {
    run.dispose();
  }
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;

/** The images of a command-line input: an image file, or a video (a video file, or a folder of frames). */
export function loadInput(path: string, numFrames: number): RgbImage[] {
  const resolved = resolve(path);
  if (!existsSync(resolved)) throw new Error(`${path}: no such file or folder`);
  if (isFrameFolder(resolved)) return loadVideo(resolved, numFrames);
  if (IMAGE_FILE.test(resolved)) return [loadImage(resolved)];
  return loadVideo(resolved, numFrames);
}

export interface PredictionOutput {
  input: string;
  predictions?: { label: string; probability: number }[];
  answer?: string;
  label?: string | null;
}

/** `vlmkit predict`: top-k classes (classification runs) or the parsed answer (generation runs) per input. */
export async function predictRun(runDir: string, inputs: string[], options: { topK?: number; prompt?: string } = {}): Promise<PredictionOutput[]> {
  if (inputs.length === 0) throw new Error("predict needs at least one input (an image file or a video)");
  const run = await loadRun(runDir);
  try {
    const config = resolveRunConfig(run.config);
    const frames = config.data!.num_frames!;
    const samples: VisualSample[] = inputs.map((input, i) => ({ key: `input:${i}:${input}`, images: loadInput(input, frames), labelIndex: 0 }));
    if (run.classification) {
      const k = Math.min(options.topK ?? config.eval!.top_k!, run.labels.length);
      const probabilities = run.classification.scores(new SampleSource(samples.length, (i) => samples[i]), 16).probabilities;
      return inputs.map((input, i) => ({ input, predictions: topPredictions(probabilities[i], run.labels, k) }));
    }
    const question = options.prompt ?? config.data!.prompt!;
    const answers = generateAnswers(run.vlm, samples.map((s) => ({ images: s.images, question })), config.generation!.max_new_tokens!);
    return inputs.map((input, i) => ({ input, answer: answers[i], label: parseAnswerToLabel(answers[i], run.labels).label }));
  } finally {
    run.dispose();
  }
}

/** `vlmkit generate`: the model's answer to a prompt about images (or a video), from a run or a model folder. */
export async function generateText(
  source: { run?: string; model?: string; modelConfig?: string },
  inputs: string[],
  prompt: string,
  options: { maxNewTokens?: number; numFrames?: number; seed?: number } = {},
): Promise<string> {
  const frames = options.numFrames ?? 8;
  const images = inputs.flatMap((input) => loadInput(input, frames));
  let vlm: LoadedVlm;
  let release: () => void;
  if (source.run) {
    const run = await loadRun(source.run);
    vlm = run.vlm;
    release = run.dispose;
  } else {
    vlm = await loadVlm({ model: { path: source.model, config: source.modelConfig } }, options.seed);
    release = () => vlm.model.dispose();
  }
  try {
    return generateAnswers(vlm, [{ images, question: prompt }], options.maxNewTokens ?? 32)[0];
  } finally {
    release();
  }
}
