// The training loop: epochs or max steps, gradient accumulation, AdamW with decay / no-decay groups, warmup and a
// schedule, gradient clipping, autocast on CUDA, periodic evaluation, best / last checkpoints written atomically,
// early stopping, a NaN/inf guard, exact resume, and logs (console, metrics.jsonl, TensorBoard).
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { autocast, getRngState, manualSeed, noGrad, setRngState } from "../torch/autograd.js";
import { cuda } from "../torch/cuda.js";
import type { Module, Parameter } from "../torch/nn/module.js";
import { AdamW } from "../torch/optim/adamw.js";
import { clipGradNorm } from "../torch/optim/clip.js";
import type { OptimizerStateDict } from "../torch/optim/optimizer.js";
import { Scheduler, scheduleByName, type SchedulerStateDict } from "../torch/optim/schedules.js";
import { readSafetensors, writeSafetensors } from "../torch/safetensors.js";
import { Tensor, dispose, tidy } from "../torch/tensor.js";
import { readJson, recoverCheckpointFolder, writeFileDurably, writeFolderAtomically, writeJsonDurably } from "./checkpoint.js";
import { planEpoch, stepsPerEpoch } from "./data_order.js";
import { GradScaler, type GradScalerState } from "./grad_scaler.js";
import { MetricsLog } from "./metrics_log.js";
import { buildParamGroups, describeParamGroups, trainableParameters, type ParamGroupRule, type ResolvedParamGroup, type TrainableParameter } from "./param_groups.js";
import { ConsoleProgress, type ProgressState } from "./progress.js";
import { TensorBoardWriter } from "./tensorboard.js";

// ---- the contract with tasks and data ----

/** What a DataSource hands the task: `size` samples, and whatever else the task needs (tensors, labels). */
export interface Batch {
  size: number;
  [key: string]: unknown;
}

export interface LossOutput {
  /** A scalar; the trainer scales it for accumulation and calls backward. */
  loss: Tensor;
  /** Correct predictions and samples scored in this batch, for the running accuracy (both or neither). */
  correct?: number;
  total?: number;
}

export interface TrainTask<B extends Batch = Batch> {
  /** Modules whose parameters with requiresGrad are optimized (and switched between train() and eval()). */
  trainableModules(): Module[];
  /** Called inside tidy() by the trainer (temporaries are freed after backward). */
  loss(batch: B): LossOutput;
  /** Called inside noGrad() and tidy(), with the trainable modules in eval mode: e.g. { accuracy, loss, top5 }. */
  evaluate(data: DataSource<B>, batchSize: number): Record<string, number>;
  /** The tensors a checkpoint saves (adapter + head weights): live tensors, not copies; every trainable parameter must be among them. */
  checkpointTensors(): Map<string, Tensor>;
  /** Copies saved values into the live tensors (the trainer frees the map's tensors afterwards). */
  loadCheckpointTensors(tensors: Map<string, Tensor>): void;
  /**
   * Optional: a name per trainable module, used as the prefix of its parameter names in paramGroups' regexes and
   * errors. Default: none for a single module, "0", "1", ... for several.
   */
  trainableModuleNames?(): string[];
}

export interface DataSource<B extends Batch = Batch> {
  length: number;
  batch(indices: number[]): B;
}

export interface TrainOptions {
  /** Passes over the training data (default 1); ignored when maxSteps is given. */
  epochs?: number;
  /** Total optimizer steps; overrides epochs (the data is cycled epoch after epoch). */
  maxSteps?: number;
  batchSize: number;
  /** Micro-batches per optimizer step (default 1); each micro-batch's loss is divided by their number. */
  gradAccumulation?: number;
  lr: number;
  /** Decoupled weight decay of the "decay" group (default 0.01); biases, norms and 1-d tensors get none. */
  weightDecay?: number;
  /** Linear warmup steps; takes precedence over warmupRatio. */
  warmupSteps?: number | undefined;
  /** Warmup as a fraction of the total steps (rounded up), when warmupSteps is not given. */
  warmupRatio?: number;
  /** Learning-rate schedule after warmup (default "linear", as transformers' Trainer). */
  schedule?: "constant" | "linear" | "cosine";
  /** Clip the total gradient norm to this (default: no clipping; the norm is still logged). */
  maxGradNorm?: number;
  /** Mixed precision on CUDA (fp16 adds dynamic loss scaling); ignored with a notice when training on the CPU. */
  autocast?: "bf16" | "fp16" | null;
  /** Evaluate at each epoch's end (default) or every N optimizer steps; the last step is always evaluated. */
  evalEvery?: "epoch" | number;
  /** The evaluate() key that selects the best checkpoint (default: "accuracy" when reported, else "loss"). */
  bestMetric?: string;
  /** Whether larger is better (default: "min" for names with loss / error / perplexity, else "max"). */
  bestMode?: "max" | "min";
  /** Stop after this many evaluations in a row without improvement of bestMetric. */
  earlyStoppingPatience?: number;
  /** Seeds torch's generators and the data order (default 42). */
  seed?: number;
  outputDir: string;
  /** Continue from outputDir/checkpoints/last (a fresh run starts when there is none). */
  resume?: boolean;
  /** On a non-finite loss or gradient: skip the step, multiply the lr by lrFactor; abort at maxConsecutive in a row (default 5, 0.5). */
  nanGuard?: { maxConsecutive: number; lrFactor: number };
  /** Progress bar on a TTY, a line every logEvery steps otherwise (default true). */
  progress?: boolean;
  /** User parameter groups; the first whose regex matches a parameter's name takes it. */
  paramGroups?: ParamGroupRule[];

  // ---- beyond the shared contract ----
  /** Keep parameters matched by no paramGroups entry in "decay" / "no_decay" (default true); false makes them an error. */
  defaultParamGroups?: boolean;
  /** Batch size of evaluate() (default batchSize). */
  evalBatchSize?: number;
  /** Shuffle the training data each epoch (default true). */
  shuffle?: boolean;
  /** Optimizer steps between metrics.jsonl / TensorBoard / console lines (default 10). */
  logEvery?: number;
  /** Also write the last checkpoint every N steps (it is always written after evaluations, epochs and at the end). */
  saveEvery?: number;
  /** End this run after this many optimizer steps in total, saving the last checkpoint (the schedule still spans the whole run). */
  stopAfterSteps?: number;
  /** When aborted, the current step finishes, the last checkpoint is written, and fit() returns ("interrupted"). */
  signal?: AbortSignal;
  /** Start a fresh run in an outputDir that already holds one (its checkpoints, metrics and events are removed). */
  overwrite?: boolean;
  /** Receives every console line instead of stderr (no bar is drawn). */
  log?: (line: string) => void;
  /** Called after every optimizer step (skipped ones included). */
  onStep?: (info: StepInfo) => void;
}

export interface StepInfo {
  step: number;
  /** Fractional epoch after this step. */
  epoch: number;
  /** Mean loss of the step's micro-batches (NaN / Infinity when the step was skipped for it). */
  loss: number;
  /** The learning rate (first group) this step used. */
  lr: number;
  gradNorm: number | null;
  /** Why the step made no update, or null. */
  skipped: string | null;
}

export interface EvalRecord {
  step: number;
  epoch: number;
  metrics: Record<string, number>;
}

export interface TrainResult {
  outputDir: string;
  /** "completed": all steps done; "early_stopping"; "stopped": stopAfterSteps reached; "interrupted": signal aborted. */
  stopReason: "completed" | "early_stopping" | "stopped" | "interrupted";
  steps: number;
  totalSteps: number;
  epoch: number;
  best: { metric: string; mode: "max" | "min"; value: number; step: number; dir: string } | null;
  lastCheckpoint: string;
  /** Evaluations of this fit() call, in order. */
  evals: EvalRecord[];
  /** The metrics of the last evaluation (of this call or, resumed with nothing left to do, of the checkpoint). */
  finalMetrics: Record<string, number> | null;
  /** Steps skipped by the NaN guard (over the whole run, resumes included). */
  skippedSteps: number;
  /** The step this call resumed from, or null for a fresh run. */
  resumedFromStep: number | null;
}

// ---- the run folder ----

export const RUN_FILES = {
  options: "train_options.json",
  metrics: "metrics.jsonl",
  tensorboard: "tensorboard",
  checkpoints: "checkpoints",
} as const;

/** Files of a checkpoint folder; "best" holds weights + trainer_state.json only, "last" everything needed to resume. */
export const CHECKPOINT_FILES = {
  weights: "weights.safetensors",
  optimizer: "optimizer.safetensors",
  state: "trainer_state.json",
  rngCpu: "rng_cpu.bin",
  rngCuda: "rng_cuda.bin",
} as const;

const STATE_FORMAT = "vlmkit-trainer-state";

interface BestRecord {
  metric: string;
  mode: "max" | "min";
  value: number;
  step: number;
}

/** trainer_state.json: everything but tensors and RNG bytes that a resumed run needs. */
export interface TrainerStateFile {
  format: typeof STATE_FORMAT;
  version: 1;
  step: number;
  /** Epochs completed; the run is inside epoch `epoch` (0-based). */
  epoch: number;
  /** Micro-batches of the current epoch already consumed (always at an optimizer-step boundary). */
  positionInEpoch: number;
  best: BestRecord | null;
  /** Evaluations in a row without improvement. */
  patience: number;
  consecutiveNonFinite: number;
  skippedSteps: number;
  lastEvalStep: number | null;
  lastMetrics: Record<string, number> | null;
  data: { trainLength: number; batchSize: number; gradAccumulation: number; seed: number; shuffle: boolean };
  optimizer: OptimizerStateDict["meta"] | null;
  scheduler: SchedulerStateDict | null;
  gradScaler: GradScalerState | null;
  savedAt: string;
}

// ---- options ----

interface ResolvedOptions {
  epochs: number;
  maxSteps: number | null;
  totalSteps: number;
  stepsPerEpoch: number;
  batchSize: number;
  evalBatchSize: number;
  gradAccumulation: number;
  lr: number;
  weightDecay: number;
  warmupSteps: number;
  schedule: "constant" | "linear" | "cosine";
  maxGradNorm: number | null;
  autocast: "bf16" | "fp16" | null;
  evalEvery: "epoch" | number;
  bestMetric: string | null;
  bestMode: "max" | "min" | null;
  earlyStoppingPatience: number | null;
  seed: number;
  outputDir: string;
  resume: boolean;
  nanGuard: { maxConsecutive: number; lrFactor: number };
  progress: boolean;
  paramGroups: ParamGroupRule[];
  defaultParamGroups: boolean;
  shuffle: boolean;
  logEvery: number;
  saveEvery: number | null;
  stopAfterSteps: number | null;
  overwrite: boolean;
}

const KNOWN_OPTIONS = [
  "epochs", "maxSteps", "batchSize", "gradAccumulation", "lr", "weightDecay", "warmupSteps", "warmupRatio", "schedule",
  "maxGradNorm", "autocast", "evalEvery", "bestMetric", "bestMode", "earlyStoppingPatience", "seed", "outputDir", "resume",
  "nanGuard", "progress", "paramGroups", "defaultParamGroups", "evalBatchSize", "shuffle", "logEvery", "saveEvery",
  "stopAfterSteps", "signal", "overwrite", "log", "onStep",
];

function positiveInteger(key: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new Error(`TrainOptions.${key} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nonNegativeNumber(key: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new Error(`TrainOptions.${key} must be a finite number >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

function oneOf<T extends string>(key: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new Error(`TrainOptions.${key} must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${JSON.stringify(value)}`);
  return value as T;
}

function resolveOptions(options: TrainOptions, trainLength: number, hasEvalData: boolean): ResolvedOptions {
  if (!options || typeof options !== "object") throw new Error("Trainer: options are required ({ batchSize, lr, outputDir, ... })");
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.includes(key)) throw new Error(`TrainOptions: unknown option '${key}' (known: ${KNOWN_OPTIONS.join(", ")})`);
  }
  const batchSize = positiveInteger("batchSize", options.batchSize);
  const gradAccumulation = positiveInteger("gradAccumulation", options.gradAccumulation ?? 1);
  const lr = nonNegativeNumber("lr", options.lr);
  const weightDecay = nonNegativeNumber("weightDecay", options.weightDecay ?? 0.01);
  if (typeof options.outputDir !== "string" || options.outputDir === "") throw new Error("TrainOptions.outputDir must name the run folder");
  const perEpoch = stepsPerEpoch(trainLength, batchSize, gradAccumulation);
  const epochs = positiveInteger("epochs", options.epochs ?? 1);
  const maxSteps = options.maxSteps === undefined ? null : positiveInteger("maxSteps", options.maxSteps);
  const totalSteps = maxSteps ?? epochs * perEpoch;
  let warmupSteps: number;
  if (options.warmupSteps !== undefined) {
    warmupSteps = nonNegativeNumber("warmupSteps", options.warmupSteps);
    if (!Number.isInteger(warmupSteps)) throw new Error(`TrainOptions.warmupSteps must be an integer, got ${warmupSteps}`);
  } else {
    const ratio = nonNegativeNumber("warmupRatio", options.warmupRatio ?? 0);
    if (ratio > 1) throw new Error(`TrainOptions.warmupRatio must be in [0, 1], got ${ratio}`);
    warmupSteps = Math.ceil(ratio * totalSteps);
  }
  const evalEvery = options.evalEvery === undefined || options.evalEvery === "epoch" ? "epoch" : positiveInteger("evalEvery", options.evalEvery);
  const earlyStoppingPatience = options.earlyStoppingPatience === undefined ? null : positiveInteger("earlyStoppingPatience", options.earlyStoppingPatience);
  if (earlyStoppingPatience !== null && !hasEvalData) {
    throw new Error("TrainOptions.earlyStoppingPatience needs evaluation data: pass an evalData DataSource to the Trainer, or drop the option");
  }
  const nanGuard = options.nanGuard ?? { maxConsecutive: 5, lrFactor: 0.5 };
  positiveInteger("nanGuard.maxConsecutive", nanGuard.maxConsecutive);
  if (!(typeof nanGuard.lrFactor === "number" && nanGuard.lrFactor > 0 && nanGuard.lrFactor <= 1)) {
    throw new Error(`TrainOptions.nanGuard.lrFactor must be in (0, 1], got ${JSON.stringify(nanGuard.lrFactor)}`);
  }
  if (options.paramGroups !== undefined && !Array.isArray(options.paramGroups)) throw new Error("TrainOptions.paramGroups must be an array of { name, match, lr?, weightDecay? }");
  if (options.maxGradNorm !== undefined && !(typeof options.maxGradNorm === "number" && options.maxGradNorm > 0)) {
    throw new Error(`TrainOptions.maxGradNorm must be a number > 0, got ${JSON.stringify(options.maxGradNorm)}`);
  }
  return {
    epochs,
    maxSteps,
    totalSteps,
    stepsPerEpoch: perEpoch,
    batchSize,
    evalBatchSize: positiveInteger("evalBatchSize", options.evalBatchSize ?? batchSize),
    gradAccumulation,
    lr,
    weightDecay,
    warmupSteps,
    schedule: oneOf("schedule", options.schedule ?? "linear", ["constant", "linear", "cosine"] as const),
    maxGradNorm: options.maxGradNorm ?? null,
    autocast: options.autocast == null ? null : oneOf("autocast", options.autocast, ["bf16", "fp16"] as const),
    evalEvery,
    bestMetric: options.bestMetric ?? null,
    bestMode: options.bestMode === undefined ? null : oneOf("bestMode", options.bestMode, ["max", "min"] as const),
    earlyStoppingPatience,
    seed: resolveSeed(options.seed),
    outputDir: resolve(options.outputDir),
    resume: options.resume ?? false,
    nanGuard: { maxConsecutive: nanGuard.maxConsecutive, lrFactor: nanGuard.lrFactor },
    progress: options.progress ?? true,
    paramGroups: options.paramGroups ?? [],
    defaultParamGroups: options.defaultParamGroups ?? true,
    shuffle: options.shuffle ?? true,
    logEvery: positiveInteger("logEvery", options.logEvery ?? 10),
    saveEvery: options.saveEvery === undefined ? null : positiveInteger("saveEvery", options.saveEvery),
    stopAfterSteps: options.stopAfterSteps === undefined ? null : positiveInteger("stopAfterSteps", options.stopAfterSteps),
    overwrite: options.overwrite ?? false,
  };
}

function resolveSeed(seed: unknown): number {
  if (seed === undefined) return 42;
  if (typeof seed !== "number" || !Number.isSafeInteger(seed)) throw new Error(`TrainOptions.seed must be an integer, got ${JSON.stringify(seed)}`);
  return seed;
}

/** "min" for metrics where lower is better (loss, error, perplexity), else "max". */
export function defaultBestMode(metric: string): "max" | "min" {
  return /loss|error|perplexity|ppl|wer|cer|mse|mae/i.test(metric) ? "min" : "max";
}

// ---- the trainer ----

interface RngSnapshot {
  cpu: Buffer;
  cuda: Buffer | null;
}

interface StepOutcome {
  loss: number;
  correct: number;
  total: number;
  samples: number;
  gradNorm: number | null;
  /** Why no update was made (non-finite loss or gradient), or null. */
  skipped: string | null;
  /** fp16 loss-scale overflow: skipped by the scaler, not a NaN-guard event. */
  overflow: boolean;
}

/** Running sums between two log lines. */
class LogWindow {
  lossSum = 0;
  steps = 0;
  correct = 0;
  total = 0;
  samples = 0;
  gradNormSum = 0;
  gradNorms = 0;
  started = performance.now();

  add(outcome: StepOutcome): void {
    this.samples += outcome.samples;
    if (outcome.skipped || outcome.overflow) return;
    this.lossSum += outcome.loss;
    this.steps++;
    this.correct += outcome.correct;
    this.total += outcome.total;
    if (outcome.gradNorm !== null) {
      this.gradNormSum += outcome.gradNorm;
      this.gradNorms++;
    }
  }
  get seconds(): number {
    return (performance.now() - this.started) / 1000;
  }
}

export class Trainer<B extends Batch> {
  readonly task: TrainTask<B>;
  readonly trainData: DataSource<B>;
  readonly evalData: DataSource<B> | null;
  /** The options with every default filled in (also written to the run folder as train_options.json). */
  readonly options: Readonly<ResolvedOptions>;
  readonly parameters: TrainableParameter[];
  readonly paramGroups: ResolvedParamGroup[];
  readonly optimizer: AdamW;
  readonly scheduler: Scheduler;

  readonly #rawOptions: TrainOptions;
  readonly #modules: Module[];
  readonly #params: Parameter[];
  readonly #progress: ConsoleProgress;
  readonly #autocastDtype: "bfloat16" | "float16" | null;
  readonly #scaler: GradScaler | null;
  #fitCalled = false;

  constructor(task: TrainTask<B>, train: DataSource<B>, evalData: DataSource<B> | null, options: TrainOptions) {
    if (!task || typeof task.loss !== "function" || typeof task.trainableModules !== "function") {
      throw new Error("Trainer: the task must implement TrainTask (trainableModules, loss, evaluate, checkpointTensors, loadCheckpointTensors)");
    }
    if (!train || typeof train.batch !== "function" || !Number.isInteger(train.length) || train.length < 1) {
      throw new Error(`Trainer: the training data must be a DataSource with length >= 1 and batch(indices), got length ${train?.length}`);
    }
    if (evalData !== null && (typeof evalData?.batch !== "function" || !Number.isInteger(evalData.length))) {
      throw new Error("Trainer: evalData must be a DataSource (length, batch(indices)) or null");
    }
    this.task = task;
    this.trainData = train;
    this.evalData = evalData;
    this.#rawOptions = options;
    this.options = resolveOptions(options, train.length, evalData !== null);
    this.#progress = new ConsoleProgress({ enabled: this.options.progress, log: options.log });

    this.#modules = task.trainableModules();
    if (!Array.isArray(this.#modules) || this.#modules.length === 0) throw new Error("Trainer: task.trainableModules() returned no modules");
    this.parameters = trainableParameters(this.#modules, task.trainableModuleNames?.());
    if (this.parameters.length === 0) {
      throw new Error("Trainer: the task's modules have no parameter with requiresGrad; unfreeze something (adaptModel, a head) before training");
    }
    this.#params = this.parameters.map((p) => p.param);
    this.#checkCheckpointCoversParameters();
    this.paramGroups = buildParamGroups(this.parameters, {
      lr: this.options.lr,
      weightDecay: this.options.weightDecay,
      rules: this.options.paramGroups,
      defaultGroups: this.options.defaultParamGroups,
    });
    this.optimizer = new AdamW(
      this.paramGroups.map((g) => ({ name: g.name, params: g.params, lr: g.lr, weightDecay: g.weightDecay })),
      { lr: this.options.lr, weightDecay: this.options.weightDecay },
    );
    this.scheduler = new Scheduler(
      this.optimizer,
      scheduleByName(this.options.schedule, { warmupSteps: this.options.warmupSteps, trainingSteps: this.options.totalSteps }),
    );

    const onCuda = this.#params[0].isCuda;
    this.#autocastDtype = this.options.autocast === null || !onCuda ? null : this.options.autocast === "bf16" ? "bfloat16" : "float16";
    this.#scaler = this.#autocastDtype === "float16" ? new GradScaler() : null;
  }

  // Resume is exact only if every trained tensor is saved; a parameter left out would restart from its initial value.
  #checkCheckpointCoversParameters(): void {
    const key = (t: Tensor) => `${t.device}:${t.dataPtr()}:${t.shape.join("x")}`;
    const saved = tidy(() => {
      const tensors = this.task.checkpointTensors();
      if (!(tensors instanceof Map)) throw new Error("TrainTask.checkpointTensors() must return a Map<string, Tensor>");
      return new Set([...tensors.values()].map(key));
    });
    const missing = this.parameters.filter((p) => p.param.numel() > 0 && !saved.has(key(p.param))).map((p) => p.name);
    if (missing.length > 0) {
      throw new Error(
        `TrainTask.checkpointTensors() leaves out ${missing.length} trainable parameter(s): ${missing.slice(0, 10).join(", ")}` +
          `${missing.length > 10 ? ", ..." : ""}. They would not be saved, so a resumed run would restart them. ` +
          "Fix: return them (the live tensors) from checkpointTensors(), or freeze them.",
      );
    }
  }

  get #runPaths() {
    const dir = this.options.outputDir;
    const checkpoints = join(dir, RUN_FILES.checkpoints);
    return {
      dir,
      options: join(dir, RUN_FILES.options),
      metrics: join(dir, RUN_FILES.metrics),
      tensorboard: join(dir, RUN_FILES.tensorboard),
      checkpoints,
      last: join(checkpoints, "last"),
      best: join(checkpoints, "best"),
    };
  }

  /** Trains until the step budget is spent, early stopping triggers, stopAfterSteps is reached or the signal aborts. */
  async fit(): Promise<TrainResult> {
    if (this.#fitCalled) throw new Error("Trainer.fit() runs once; make a new Trainer (with resume: true to continue the run)");
    this.#fitCalled = true;
    const o = this.options;
    const paths = this.#runPaths;
    mkdirSync(paths.dir, { recursive: true });
    const hasLast = recoverCheckpointFolder(paths.last);
    recoverCheckpointFolder(paths.best);
    if (!o.resume && hasLast) {
      if (!o.overwrite) {
        throw new Error(`${paths.dir} already holds a training run (${paths.last}). Pass resume: true to continue it, overwrite: true to start over there, or choose another outputDir.`);
      }
      for (const path of [paths.checkpoints, paths.tensorboard, paths.metrics]) rmSync(path, { recursive: true, force: true });
    }
    const resuming = o.resume && hasLast;
    if (o.resume && !hasLast) this.#progress.line(`resume: no checkpoint in ${paths.last}; starting a fresh run`);

    let state: TrainerStateFile;
    if (resuming) {
      state = this.#loadCheckpoint(paths.last);
      this.#progress.line(`resumed from ${paths.last} at step ${state.step} (epoch ${state.epoch}, micro-batch ${state.positionInEpoch})`);
    } else {
      manualSeed(o.seed);
      state = this.#freshState();
    }
    const resumedFromStep = resuming ? state.step : null;
    this.#writeOptionsFile(paths.options);
    if (!resuming) writeFileDurably(paths.metrics, "");
    const metrics = new MetricsLog(paths.metrics, resuming ? { keepUpToStep: state.step } : {});
    const tensorboard = new TensorBoardWriter(paths.tensorboard);
    // A start marker makes TensorBoard drop what the interrupted run logged after its checkpoint.
    if (resuming || state.step === 0) tensorboard.addSessionStart(state.step, resuming ? `resumed at step ${state.step}` : "");
    this.#describeRun(resuming);

    const evals: EvalRecord[] = [];
    let stopReason: TrainResult["stopReason"] | null = null;
    let lastSavedStep = resuming ? state.step : -1;
    const microBatchesPerEpoch = Math.ceil(this.trainData.length / o.batchSize);
    const fractionalEpoch = () => state.epoch + state.positionInEpoch / microBatchesPerEpoch;
    const runStart = performance.now();
    let stepsThisRun = 0;
    let window = new LogWindow();

    const saveLast = () => {
      if (lastSavedStep === state.step) return;
      this.#saveCheckpoint(paths.last, state, true);
      lastSavedStep = state.step;
    };

    const evaluateNow = () => {
      const record = this.#evaluate(state, fractionalEpoch());
      evals.push(record);
      metrics.write({ type: "eval", step: state.step, epoch: record.epoch, ...record.metrics });
      tensorboard.addScalars(state.step, Object.fromEntries(Object.entries(record.metrics).map(([k, v]) => [`eval/${k}`, v])));
      const best = state.best!;
      const improvedNow = best.step === state.step;
      this.#progress.line(
        `eval step ${state.step} epoch ${record.epoch.toFixed(2)}: ` +
          Object.entries(record.metrics).map(([k, v]) => `${k} ${formatMetric(v)}`).join("  ") +
          (improvedNow ? `  (best ${best.metric}, saved to ${paths.best})` : `  (best ${best.metric} ${formatMetric(best.value)} at step ${best.step})`),
      );
      if (improvedNow) this.#saveCheckpoint(paths.best, state, false);
      if (o.earlyStoppingPatience !== null && state.patience >= o.earlyStoppingPatience) {
        this.#progress.line(`early stopping: ${best.metric} has not improved for ${state.patience} evaluations (best ${formatMetric(best.value)} at step ${best.step})`);
        stopReason = "early_stopping";
      }
    };

    try {
      this.#setTraining(true);
      if (o.stopAfterSteps !== null && state.step >= o.stopAfterSteps) stopReason = "stopped";
      if (state.step >= o.totalSteps) stopReason ??= "completed";
      if (this.#rawOptions.signal?.aborted) stopReason ??= "interrupted";
      while (stopReason === null) {
        const plan = planEpoch(this.trainData.length, o.batchSize, o.gradAccumulation, o.seed, state.epoch, o.shuffle);
        let stepIndex = plan.steps.findIndex((s) => s.first === state.positionInEpoch);
        if (stepIndex < 0) throw new Error(`checkpoint position ${state.positionInEpoch} in epoch ${state.epoch} is not at an optimizer-step boundary of this data`);
        for (; stepIndex < plan.steps.length && stopReason === null; stepIndex++) {
          const { first, end } = plan.steps[stepIndex];
          const lr = this.optimizer.paramGroups[0].lr;
          const lrs = Object.fromEntries(this.optimizer.paramGroups.map((g) => [g.name ?? "", g.lr]));
          const outcome = this.#runStep(plan.microBatches.slice(first, end));
          state.step++;
          stepsThisRun++;
          const epochDone = end === plan.microBatches.length;
          if (epochDone) {
            state.epoch++;
            state.positionInEpoch = 0;
          } else state.positionInEpoch = end;

          if (outcome.skipped) this.#guardNonFinite(state, outcome, metrics, fractionalEpoch());
          else if (!outcome.overflow) state.consecutiveNonFinite = 0;
          this.scheduler.step();
          window.add(outcome);
          this.#rawOptions.onStep?.({ step: state.step, epoch: fractionalEpoch(), loss: outcome.loss, lr, gradNorm: outcome.gradNorm, skipped: outcome.skipped });

          const lastStep = state.step >= o.totalSteps;
          const elapsed = (performance.now() - runStart) / 1000;
          const progressState: ProgressState = {
            step: state.step,
            totalSteps: o.totalSteps,
            epoch: fractionalEpoch(),
            loss: window.steps > 0 ? window.lossSum / window.steps : undefined,
            accuracy: window.total > 0 ? window.correct / window.total : undefined,
            lr,
            samplesPerSecond: window.seconds > 0 ? window.samples / window.seconds : undefined,
            etaSeconds: (elapsed / stepsThisRun) * (o.totalSteps - state.step),
          };
          this.#progress.update(progressState);
          if (state.step % o.logEvery === 0 || lastStep || epochDone) {
            const record: Record<string, unknown> = {
              type: "train",
              step: state.step,
              epoch: progressState.epoch,
              loss: progressState.loss ?? null,
              lr,
              ...(this.optimizer.paramGroups.length > 1 ? { lrs } : {}),
              grad_norm: window.gradNorms > 0 ? window.gradNormSum / window.gradNorms : null,
              samples_per_s: progressState.samplesPerSecond ?? null,
              elapsed_s: elapsed,
            };
            if (progressState.accuracy !== undefined) record.accuracy = progressState.accuracy;
            if (this.#scaler) record.loss_scale = this.#scaler.scale;
            metrics.write(record as { type: string; step: number });
            const scalars: Record<string, number> = { "train/lr": lr };
            if (progressState.loss !== undefined) scalars["train/loss"] = progressState.loss;
            if (progressState.accuracy !== undefined) scalars["train/accuracy"] = progressState.accuracy;
            if (window.gradNorms > 0) scalars["train/grad_norm"] = window.gradNormSum / window.gradNorms;
            if (progressState.samplesPerSecond !== undefined) scalars["train/samples_per_s"] = progressState.samplesPerSecond;
            tensorboard.addScalars(state.step, scalars);
            this.#progress.stepLine(progressState);
            window = new LogWindow();
          }

          const evalDue = this.evalData !== null && (o.evalEvery === "epoch" ? epochDone : state.step % o.evalEvery === 0);
          if (evalDue || (lastStep && this.evalData !== null && state.lastEvalStep !== state.step)) evaluateNow();
          if (stopReason === null && o.stopAfterSteps !== null && state.step >= o.stopAfterSteps) stopReason = "stopped";
          if (stopReason === null && this.#rawOptions.signal?.aborted) {
            this.#progress.line(`interrupted at step ${state.step}; saving the last checkpoint`);
            stopReason = "interrupted";
          }
          if (stopReason === null && lastStep) stopReason = "completed";
          if (evalDue || epochDone || stopReason !== null || (o.saveEvery !== null && state.step % o.saveEvery === 0)) saveLast();
          if (stopReason === null) await new Promise<void>((done) => setImmediate(done));
        }
      }
      saveLast();
    } finally {
      this.#progress.finish();
      tensorboard.close();
    }

    const best = state.best && state.best.step >= 0 ? { ...state.best, dir: paths.best } : null;
    this.#progress.line(
      `training ${stopReason}: ${state.step}/${o.totalSteps} steps` +
        (best ? `, best ${best.metric} ${formatMetric(best.value)} at step ${best.step} (${paths.best})` : "") +
        (state.skippedSteps > 0 ? `, ${state.skippedSteps} step(s) skipped for non-finite values` : ""),
    );
    return {
      outputDir: paths.dir,
      stopReason: stopReason as TrainResult["stopReason"],
      steps: state.step,
      totalSteps: o.totalSteps,
      epoch: fractionalEpoch(),
      best,
      lastCheckpoint: paths.last,
      evals,
      finalMetrics: state.lastMetrics,
      skippedSteps: state.skippedSteps,
      resumedFromStep,
    };
  }

  // ---- one optimizer step ----

  #withAutocast<T>(fn: () => T): T {
    return this.#autocastDtype === null ? fn() : autocast("cuda", this.#autocastDtype, fn);
  }

  #runStep(microBatches: number[][]): StepOutcome {
    const count = microBatches.length;
    const lossScale = this.#scaler?.scale ?? 1;
    const outcome: StepOutcome = { loss: 0, correct: 0, total: 0, samples: 0, gradNorm: null, skipped: null, overflow: false };
    for (const indices of microBatches) {
      // Once a micro-batch is non-finite the step is skipped: the rest of its micro-batches are not computed.
      if (outcome.skipped) {
        outcome.samples += indices.length;
        continue;
      }
      tidy(() => {
        const batch = this.trainData.batch(indices);
        const out = this.#withAutocast(() => this.task.loss(batch));
        if (!out || !(out.loss instanceof Tensor)) throw new Error("TrainTask.loss() must return { loss: Tensor, correct?, total? }");
        if (out.loss.numel() !== 1) throw new Error(`TrainTask.loss() must return a scalar loss, got shape [${out.loss.shape}]`);
        const value = out.loss.item();
        outcome.samples += typeof batch?.size === "number" ? batch.size : indices.length;
        if (!Number.isFinite(value)) {
          outcome.skipped = `loss is ${value}`;
          outcome.loss = value;
          return;
        }
        // Mean over the step's micro-batches: the gradient of a mean loss does not depend on how the batch was cut.
        out.loss.mul(lossScale / count).backward();
        outcome.loss += value / count;
        if (typeof out.correct === "number" && typeof out.total === "number") {
          outcome.correct += out.correct;
          outcome.total += out.total;
        }
      });
    }
    if (outcome.skipped) {
      this.optimizer.zeroGrad();
      return outcome;
    }
    this.#scaler?.unscale(this.#params);
    const norm = tidy(() => clipGradNorm(this.#params, this.options.maxGradNorm ?? Infinity).item());
    outcome.gradNorm = norm;
    if (!Number.isFinite(norm)) {
      this.optimizer.zeroGrad();
      if (this.#scaler) {
        this.#scaler.update(true);
        outcome.overflow = true;
      } else outcome.skipped = `gradient norm is ${norm}`;
      return outcome;
    }
    this.optimizer.step();
    this.optimizer.zeroGrad();
    this.#scaler?.update(false);
    return outcome;
  }

  // Skip, lower the lr (persistently: the scheduler's base lrs), warn; abort at maxConsecutive in a row.
  #guardNonFinite(state: TrainerStateFile, outcome: StepOutcome, metrics: MetricsLog, epoch: number): void {
    const { maxConsecutive, lrFactor } = this.options.nanGuard;
    state.consecutiveNonFinite++;
    state.skippedSteps++;
    this.scheduler.scaleBaseLrs(lrFactor);
    const baseLr = this.scheduler.baseLrs[0];
    metrics.write({ type: "skip", step: state.step, epoch, reason: outcome.skipped, base_lr: baseLr, consecutive: state.consecutiveNonFinite });
    if (state.consecutiveNonFinite >= maxConsecutive) {
      throw new Error(
        `training aborted at step ${state.step}: ${state.consecutiveNonFinite} steps in a row had a non-finite value (last: ${outcome.skipped}), ` +
          `although each lowered the lr (base lr now ${baseLr.toExponential(3)}). Fix: lower lr, set maxGradNorm, check the data of these steps, ` +
          `or use bf16 instead of fp16. The last checkpoint (${this.#runPaths.last}) is from before these steps.`,
      );
    }
    this.#progress.line(
      `warning: step ${state.step}: ${outcome.skipped}; step skipped, base lr lowered to ${baseLr.toExponential(3)} ` +
        `(${state.consecutiveNonFinite}/${maxConsecutive} in a row before aborting)`,
    );
  }

  // ---- evaluation ----

  #setTraining(training: boolean): void {
    for (const module of this.#modules) module.train(training);
  }

  #captureRng(): RngSnapshot {
    return { cpu: getRngState("cpu"), cuda: cuda.isAvailable() ? getRngState("cuda") : null };
  }

  #restoreRng(snapshot: RngSnapshot): void {
    setRngState(snapshot.cpu, "cpu");
    if (snapshot.cuda) setRngState(snapshot.cuda, "cuda");
  }

  #evaluate(state: TrainerStateFile, epoch: number): EvalRecord {
    // Evaluation must not move the training's random streams: an eval schedule never changes the trained weights.
    const rng = this.#captureRng();
    this.#setTraining(false);
    let metrics: Record<string, number>;
    try {
      metrics = noGrad(() => tidy(() => this.#withAutocast(() => this.task.evaluate(this.evalData!, this.options.evalBatchSize))));
    } finally {
      this.#setTraining(true);
      this.#restoreRng(rng);
    }
    if (!metrics || typeof metrics !== "object") throw new Error("TrainTask.evaluate() must return an object of numbers, e.g. { accuracy: 0.9, loss: 0.3 }");
    for (const [key, value] of Object.entries(metrics)) {
      if (typeof value !== "number") throw new Error(`TrainTask.evaluate() returned a non-number for '${key}': ${JSON.stringify(value)}`);
    }
    const metric = state.best?.metric ?? this.options.bestMetric ?? ("accuracy" in metrics ? "accuracy" : "loss" in metrics ? "loss" : Object.keys(metrics)[0]);
    if (metric === undefined || !(metric in metrics)) {
      throw new Error(`bestMetric '${metric}' is not among the evaluation metrics (${Object.keys(metrics).join(", ") || "none"}); set TrainOptions.bestMetric to one of them`);
    }
    const mode = state.best?.mode ?? this.options.bestMode ?? defaultBestMode(metric);
    const value = metrics[metric];
    const previous = state.best && state.best.step >= 0 ? state.best.value : null;
    const improved = Number.isFinite(value) && (previous === null || (mode === "max" ? value > previous : value < previous));
    if (improved) {
      state.best = { metric, mode, value, step: state.step };
      state.patience = 0;
    } else {
      state.best ??= { metric, mode, value: mode === "max" ? -Infinity : Infinity, step: -1 };
      state.patience++;
    }
    state.lastEvalStep = state.step;
    state.lastMetrics = { ...metrics };
    return { step: state.step, epoch, metrics: { ...metrics } };
  }

  // ---- checkpoints ----

  #freshState(): TrainerStateFile {
    const o = this.options;
    return {
      format: STATE_FORMAT,
      version: 1,
      step: 0,
      epoch: 0,
      positionInEpoch: 0,
      best: null,
      patience: 0,
      consecutiveNonFinite: 0,
      skippedSteps: 0,
      lastEvalStep: null,
      lastMetrics: null,
      data: { trainLength: this.trainData.length, batchSize: o.batchSize, gradAccumulation: o.gradAccumulation, seed: o.seed, shuffle: o.shuffle },
      optimizer: null,
      scheduler: null,
      gradScaler: null,
      savedAt: "",
    };
  }

  /** Writes a checkpoint folder atomically; `full` adds optimizer, scheduler and RNG state (the "last" checkpoint). */
  #saveCheckpoint(dir: string, state: TrainerStateFile, full: boolean): void {
    writeFolderAtomically(dir, (temporary) => {
      // tidy frees any new handles checkpointTensors() made; the live weights it returns are kept.
      tidy(() => writeSafetensors(join(temporary, CHECKPOINT_FILES.weights), this.task.checkpointTensors(), { format: "pt" }));
      const file: TrainerStateFile = { ...state, savedAt: new Date().toISOString() };
      if (full) {
        const optimizerState = this.optimizer.stateDict();
        try {
          writeSafetensors(join(temporary, CHECKPOINT_FILES.optimizer), optimizerState.tensors);
        } finally {
          dispose(optimizerState.tensors);
        }
        file.optimizer = optimizerState.meta;
        file.scheduler = this.scheduler.stateDict();
        file.gradScaler = this.#scaler?.stateDict() ?? null;
        const rng = this.#captureRng();
        writeFileDurably(join(temporary, CHECKPOINT_FILES.rngCpu), rng.cpu);
        if (rng.cuda) writeFileDurably(join(temporary, CHECKPOINT_FILES.rngCuda), rng.cuda);
      }
      writeJsonDurably(join(temporary, CHECKPOINT_FILES.state), file);
    });
  }

  #loadCheckpoint(dir: string): TrainerStateFile {
    const statePath = join(dir, CHECKPOINT_FILES.state);
    const state = readJson<TrainerStateFile>(statePath);
    if (state?.format !== STATE_FORMAT || state.version !== 1) throw new Error(`${statePath} is not a vlmkit trainer state (format ${JSON.stringify(state?.format)})`);
    if (!state.optimizer || !state.scheduler) throw new Error(`${dir} is not a resumable checkpoint (no optimizer state); resume from checkpoints/last`);
    const o = this.options;
    const now = { trainLength: this.trainData.length, batchSize: o.batchSize, gradAccumulation: o.gradAccumulation, seed: o.seed, shuffle: o.shuffle };
    for (const key of Object.keys(now) as (keyof typeof now)[]) {
      if (state.data[key] !== now[key]) {
        throw new Error(
          `cannot resume from ${dir}: it was trained with ${key} ${JSON.stringify(state.data[key])}, this run has ${JSON.stringify(now[key])}. ` +
            "The data order and step boundaries would differ; use the same setting, or start a new run in another outputDir.",
        );
      }
    }

    const weights = readSafetensors(join(dir, CHECKPOINT_FILES.weights));
    try {
      this.task.loadCheckpointTensors(weights);
    } finally {
      for (const t of weights.values()) if (!t.kept) t.dispose();
    }
    const optimizerTensors = readSafetensors(join(dir, CHECKPOINT_FILES.optimizer));
    try {
      this.optimizer.loadStateDict({ tensors: Object.fromEntries(optimizerTensors), meta: state.optimizer });
    } finally {
      dispose(optimizerTensors);
    }
    this.scheduler.loadStateDict(state.scheduler);
    if (this.#scaler && state.gradScaler) this.#scaler.loadStateDict(state.gradScaler);

    setRngState(readFileSync(join(dir, CHECKPOINT_FILES.rngCpu)), "cpu");
    const cudaRng = join(dir, CHECKPOINT_FILES.rngCuda);
    if (existsSync(cudaRng)) {
      if (cuda.isAvailable()) setRngState(readFileSync(cudaRng), "cuda");
      else this.#progress.line(`note: ${dir} holds a CUDA generator state but CUDA is not available; random draws on CUDA cannot repeat`);
    }
    return state;
  }

  #writeOptionsFile(path: string): void {
    writeJsonDurably(path, {
      ...this.options,
      trainSamples: this.trainData.length,
      evalSamples: this.evalData?.length ?? null,
      autocastActive: this.#autocastDtype,
      optimizerGroups: this.paramGroups.map((g) => ({ name: g.name, lr: g.lr, weightDecay: g.weightDecay, parameters: g.paramNames })),
    });
  }

  #describeRun(resuming: boolean): void {
    const o = this.options;
    const elements = this.#params.reduce((sum, p) => sum + p.numel(), 0);
    const budget = o.maxSteps !== null ? `maxSteps ${o.maxSteps}` : `${o.epochs} epoch(s)`;
    this.#progress.line(
      `${resuming ? "resuming" : "training"}: ${this.trainData.length} samples, batch ${o.batchSize} x ${o.gradAccumulation} accumulation, ` +
        `${o.stepsPerEpoch} steps/epoch, ${o.totalSteps} steps (${budget}), ${o.schedule} schedule with ${o.warmupSteps} warmup steps, ` +
        `${elements.toLocaleString("en-US")} trainable params in ${this.#params.length} tensors`,
    );
    this.#progress.line(`param groups:\n${describeParamGroups(this.paramGroups)}`);
    if (o.autocast !== null && this.#autocastDtype === null) {
      this.#progress.line(`note: autocast ${o.autocast} applies on CUDA only; the parameters are on ${this.#params[0].device}, so this run computes in their dtype`);
    }
  }
}

function formatMetric(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(4);
}
