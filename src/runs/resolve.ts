// From a run configuration to the library's options: every default filled in (so run.yaml says exactly what ran),
// paths made absolute, the adaptation plan, the Trainer's options and the model's load options.
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { AdaptationPlan, ComponentAdaptation } from "../adapt/index.js";
import type { TrainOptions } from "../train/index.js";
import { DEFAULT_QUESTION, type LoadVlmOptions, type VlmSource } from "../models/vlm.js";
import { mergeConfigs, type AdaptationConfig, type RunConfig } from "./config.js";

export type Log = (line: string) => void;

/** Every default, so a run folder's run.yaml says exactly what ran. */
export const RUN_DEFAULTS: RunConfig = {
  task: "classification",
  data: { val_ratio: 0.2, skip_bad: false, num_frames: 8, prompt: DEFAULT_QUESTION, max_length: 2048 },
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

/** The configuration with defaults filled in and paths absolute, checked for what a training run needs. */
export function resolveRunConfig(config: RunConfig): RunConfig {
  const resolved = absolutePaths(mergeConfigs(RUN_DEFAULTS, config));
  resolved.best_metric ??= resolved.task === "generation" ? "loss" : "accuracy";
  const problems: string[] = [];
  if (!resolved.data?.train) problems.push("data.train is missing: the training records (a JSONL file or an image folder); --train <path>");
  if (!resolved.output_dir) problems.push("output_dir is missing: the run folder to write; --output <folder>");
  if (!resolved.model?.path && !resolved.model?.config) problems.push("the model is missing: model.path (--model <folder>) or model.config (--model-config <config.json>)");
  if (resolved.model?.path && resolved.model?.config) problems.push("give model.path or model.config, not both");
  if (resolved.task === "generation" && isFrozen(resolved)) {
    problems.push("task generation with every component frozen trains nothing: set components.language.mode (lora or full) or another component's");
  }
  if (problems.length > 0) throw new Error(`the run configuration is incomplete:\n  ${problems.join("\n  ")}`);
  if (resolved.task === "classification" && resolved.head!.cache_dir === undefined) resolved.head!.cache_dir = defaultFeatureCacheDir(resolved.output_dir!);
  return resolved;
}

/** The configuration with its file and folder paths absolute (relative ones are taken from the working directory). */
export function absolutePaths(config: RunConfig, base = process.cwd()): RunConfig {
  const out = structuredClone(config);
  const abs = (path: string) => (isAbsolute(path) ? path : resolve(base, path));
  if (out.output_dir) out.output_dir = abs(out.output_dir);
  if (out.model?.path) out.model.path = abs(out.model.path);
  if (out.model?.config) out.model.config = abs(out.model.config);
  if (out.model?.adapter) out.model.adapter = abs(out.model.adapter);
  const data = out.data;
  if (data) {
    if (data.train) data.train = abs(data.train);
    if (data.val) data.val = abs(data.val);
    if (data.test) data.test = abs(data.test);
    if (typeof data.labels === "string") data.labels = abs(data.labels);
  }
  if (out.head?.cache_dir) out.head.cache_dir = abs(out.head.cache_dir);
  return out;
}

/** Beside the run folders, so that sibling runs share it. */
function defaultFeatureCacheDir(runDir: string): string {
  return join(dirname(runDir), ".vlmkit-cache", "features");
}

export const isFrozen = (config: RunConfig): boolean => Object.values(config.components ?? {}).every((c) => (c?.mode ?? "frozen") === "frozen");
export const usesLora = (config: RunConfig): boolean => Object.values(config.components ?? {}).some((c) => c?.mode === "lora");

/** The per-component plan adaptModel() takes. */
export function adaptationPlan(config: RunConfig): AdaptationPlan {
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

/** The model a run names and how to load it. */
export function modelSource(config: RunConfig): { source: VlmSource; options: LoadVlmOptions } {
  const model = config.model ?? {};
  return { source: { path: model.path, config: model.config }, options: { device: model.device, dtype: model.dtype, seed: config.seed ?? 42 } };
}

/** The evaluation batch size: eval_batch_size, else the larger of batch_size and 32. */
export const evalBatchSize = (config: RunConfig): number => config.eval_batch_size ?? Math.max(config.batch_size ?? 8, 32);

export function trainOptions(config: RunConfig, log?: Log): TrainOptions {
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
    defaultParamGroups: config.default_param_groups,
    nanGuard: config.nan_guard ? { maxConsecutive: config.nan_guard.max_consecutive ?? 5, lrFactor: config.nan_guard.lr_factor ?? 0.5 } : undefined,
    paramGroups: config.param_groups?.map((g) => ({ name: g.name ?? g.match ?? "group", match: g.match ?? ".*", lr: g.lr, weightDecay: g.weight_decay })),
    log,
  };
}
