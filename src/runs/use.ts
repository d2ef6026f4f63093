// Using a finished run: rebuild its model (base, adapters, task weights) from the run folder, then `vlmkit eval`
// (a report on records), `vlmkit predict` (top-k classes or answers for files) and `vlmkit generate`.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, extname, join, resolve } from "node:path";
import { noGrad, writeSafetensors } from "../torch/index.js";
import { removeAdapters, saveAdapter, loraLayers } from "../adapt/index.js";
import { MediaCache, countMedia, loadInput, loadPredictInputs, type TrainingMedia } from "../data/media.js";
import { forEachJsonlRow } from "../data/records.js";
import { generateAnswers, loadVlm, type VisionLanguageModel } from "../models/index.js";
import type { Task, TaskReport } from "../tasks/task.js";
import { mergeConfigs, type RunConfig } from "./config.js";
import { RunFolder } from "./run_folder.js";
import { evalBatchSize, modelSource, resolveRunConfig, type Log } from "./resolve.js";
import { adaptRunModel, loadCheckpointFile, runKind } from "./train.js";
import type { PredictionOutput, RunContext, RunKind } from "./run_kind.js";

export interface LoadedRun {
  folder: RunFolder;
  /** The run's resolved configuration (with overrides). */
  config: RunConfig;
  labels: string[];
  vlm: VisionLanguageModel;
  /** The run's task with the best checkpoint's weights loaded. */
  task: Task;
  kind: RunKind;
  context: RunContext;
  dispose(): void;
}

/**
 * Rebuilds a run's model (base, adapters, task weights) with its best checkpoint's weights; with featureCache, a
 * frozen classification run's task reads and adds to the on-disk feature cache.
 */
export async function loadRun(runDir: string, overrides: RunConfig = {}, options: { featureCache?: boolean; log?: Log } = {}): Promise<LoadedRun> {
  const folder = RunFolder.open(runDir);
  let config = mergeConfigs(folder.readConfig(), overrides);
  // a random-init base was saved beside the run: load it from there
  if (folder.hasOwnModel) config = mergeConfigs(config, { model: { path: folder.modelDir, config: undefined } });
  if (config.model?.config === undefined) delete config.model?.config;
  config = resolveRunConfig(config);
  const labels = folder.readLabels();
  const weights = folder.bestWeights();
  const log = options.log ?? console.log;
  const { source, options: loadOptions } = modelSource(config);
  const vlm = await loadVlm(source, loadOptions);
  let task: Task | null = null;
  try {
    await adaptRunModel(vlm, config);
    const kind = runKind(config.task);
    const context: RunContext = { config, vlm, media: new MediaCache(config.data!.num_frames!), folder, log };
    task = kind.createTask(context, labels, { featureCache: options.featureCache ?? false });
    loadCheckpointFile(task, weights);
    vlm.model.eval();
    for (const module of task.trainableModules()) module.eval();
    const loaded = task;
    return { folder, config, labels, vlm, task: loaded, kind, context, dispose: () => (loaded.dispose(), vlm.dispose()) };
  } catch (error) {
    task?.dispose();
    vlm.dispose();
    throw error;
  }
}

export interface EvalOptions {
  /** Records to score (default: the run's data.test, else data.val, else the split it held out of data.train). */
  data?: string;
  /** The report's folder name under eval/ (default: the data file's name, or test / val). */
  split?: string;
  /** Overrides head.cache_dir (null: no on-disk feature cache). */
  cacheDir?: string | null;
}

/** `vlmkit eval`: scores a finished run and writes eval/<split>/. */
export async function evalRun(runDir: string, options: EvalOptions = {}, log: Log = console.log): Promise<TaskReport> {
  const overrides: RunConfig = options.cacheDir === undefined ? {} : { head: { cache_dir: options.cacheDir } };
  const folder = RunFolder.open(runDir);
  return folder.withLock(async () => {
    const run = await loadRun(runDir, overrides, { featureCache: true, log });
    try {
      const data = run.config.data!;
      const path = options.data ?? data.test ?? data.val ?? undefined;
      const split = options.split ?? (options.data ? basename(options.data, extname(options.data)) : data.test ? "test" : "val");
      const source = run.kind.evalData(run.context, run.labels, path);
      const batchSize = evalBatchSize(run.config);
      run.task.prepare?.([source], { log, batchSize, progress: run.config.progress !== false });
      return run.task.report(source, { split, outDir: run.folder.evalDir(split), batchSize, progress: run.config.progress !== false });
    } finally {
      run.dispose();
    }
  });
}

export type { PredictionOutput } from "./run_kind.js";

/**
 * `vlmkit predict`: top-k classes (classification runs) or the parsed answer (generation runs) per input: a still
 * image, each image of a folder (by name), or on a video run a video file or a folder of frames (loadPredictInputs).
 */
export async function predictRun(runDir: string, inputs: string[], options: { topK?: number; prompt?: string } = {}): Promise<PredictionOutput[]> {
  if (inputs.length === 0) throw new Error("predict needs at least one input (an image file, a folder of images, or a video)");
  const run = await loadRun(runDir);
  try {
    const frames = run.config.data!.num_frames!;
    const media = run.folder.readMedia() ?? mediaOfTrainingRecords(run.config);
    const items = inputs.flatMap((input) => loadPredictInputs(input, frames, media));
    return run.kind.predict(run.task, run.context, items, options);
  } finally {
    run.dispose();
  }
}

/**
 * For a run folder from before media.json: the media the rows of its data.train name (an image folder is images),
 * read without decoding anything; null when the file is gone or unreadable.
 */
export function mediaOfTrainingRecords(config: RunConfig): TrainingMedia | null {
  const train = config.data?.train;
  if (!train || !existsSync(train)) return null;
  try {
    if (statSync(train).isDirectory()) return { images: 1, videos: 0 };
    const rows: Record<string, unknown>[] = [];
    forEachJsonlRow(train, { skipBad: true }, [], (row) => rows.push(row));
    return countMedia(rows.map((row) => ({ video: row.video, images: row.image ?? row.images })));
  } catch {
    return null;
  }
}

export interface GenerateSource {
  run?: string;
  model?: string;
  modelConfig?: string;
}

export interface GenerateTextOptions {
  maxNewTokens?: number;
  numFrames?: number;
  /** Seeds random weights built from a config, and sampling. */
  seed?: number;
  device?: string;
  /** Sample instead of greedy decoding, with these settings (transformers' defaults: temperature 1, top_k 50, top_p 1). */
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
}

/** `vlmkit generate`: the model's answer to a prompt about images (or a video), from a run or a model folder. */
export async function generateText(
  source: GenerateSource, inputs: string[], prompt: string, options: GenerateTextOptions = {},
): Promise<string> {
  const images = inputs.flatMap((input) => loadInput(input, options.numFrames ?? 8));
  let vlm: VisionLanguageModel;
  let release: () => void;
  if (source.run) {
    const run = await loadRun(source.run);
    vlm = run.vlm;
    release = run.dispose;
  } else {
    vlm = await loadVlm({ path: source.model, config: source.modelConfig }, { seed: options.seed, device: options.device });
    release = () => vlm.dispose();
  }
  try {
    const { maxNewTokens, doSample, temperature, topK, topP, seed } = options;
    return generateAnswers(vlm, [{ images, question: prompt }], { maxNewTokens: maxNewTokens ?? 32, doSample, temperature, topK, topP, seed })[0];
  } finally {
    release();
  }
}

export interface ExportOptions {
  /** Write the PEFT adapter alone (adapter_config.json + adapter_model.safetensors) instead of a merged model. */
  adapterOnly?: boolean;
}

export interface ExportResult {
  dir: string;
  /** LoRA layers merged into the base weights (or saved, with adapterOnly). */
  loraLayers: number;
  /** Files written beside the model: the task's own weights (head.safetensors) and labels.json, when it has any. */
  taskFiles: string[];
}

/**
 * `vlmkit export`: the run's model with its LoRA merged into the base weights, as a Hugging Face folder that
 * transformers loads (config.json, model.safetensors, tokenizer and processor files); or, with adapterOnly, the
 * PEFT adapter alone. A classification run's head (and feature standardization) goes beside it in
 * head.safetensors, with labels.json.
 */
export async function exportRun(runDir: string, outDir: string, options: ExportOptions = {}): Promise<ExportResult> {
  const out = resolve(outDir);
  if (existsSync(out) && readdirSync(out).length > 0) throw new Error(`${out} is not empty; give a new folder to export to`);
  const run = await loadRun(runDir);
  try {
    const lora = loraLayers(run.vlm.model).length;
    if (options.adapterOnly) {
      if (lora === 0) throw new Error(`${run.folder.dir} trained no LoRA layer: there is no adapter to export (export the whole model instead)`);
      saveAdapter(run.vlm.model, out, run.vlm.folder);
    } else {
      noGrad(() => removeAdapters(run.vlm.model, { merge: true }));
      run.vlm.saveFolder(out);
    }
    // what the task trained outside the model (a head) is not part of a Hugging Face folder: keep it beside
    const own = new Map([...run.task.checkpointTensors()].filter(([name]) => !name.startsWith("model.")));
    const taskFiles: string[] = [];
    if (own.size > 0) {
      mkdirSync(out, { recursive: true });
      writeSafetensors(join(out, "head.safetensors"), own, { format: "pt" });
      writeFileSync(join(out, "labels.json"), JSON.stringify(run.labels, null, 2) + "\n");
      taskFiles.push("head.safetensors", "labels.json");
    }
    return { dir: out, loraLayers: lora, taskFiles };
  } finally {
    run.dispose();
  }
}
