// `vlmkit train` as a library call: a run configuration in, a run folder out. Loads the model through the VLM
// interface, adapts it per component, builds the task of config.task, trains it with the Trainer, keeps the best
// checkpoint's weights, saves the PEFT adapter and writes the held-out report.
import { join } from "node:path";
import { dispose, manualSeed, readSafetensors, type Tensor } from "../torch/index.js";
import { adaptModel, loadAdapter, saveAdapter } from "../adapt/index.js";
import { MediaCache } from "../data/media.js";
// the model zoo: importing it registers every family with loadVlm
import { componentPrefixesOf, loadVlm, type VisionLanguageModel } from "../models/index.js";
import { Trainer, type Batch, type DataSource, type TrainResult, type TrainTask } from "../train/index.js";
import type { Task, TaskReport } from "../tasks/task.js";
import type { RunConfig } from "./config.js";
import { RunFolder } from "./run_folder.js";
import { adaptationPlan, evalBatchSize, isFrozen, modelSource, resolveRunConfig, trainOptions, usesLora, type Log } from "./resolve.js";
import { classificationRun } from "./classification_run.js";
import { generationRun } from "./generation_run.js";
import type { RunKind } from "./run_kind.js";

/** The task kinds a run file's `task` names. */
// each kind pairs its own batch and task types, hence the any
export const RUN_KINDS: Record<NonNullable<RunConfig["task"]>, RunKind<any, any>> = {
  classification: classificationRun,
  generation: generationRun,
};

export function runKind(task: RunConfig["task"]): RunKind {
  const kind = RUN_KINDS[task ?? "classification"];
  if (!kind) throw new Error(`task '${task}' is not one of ${Object.keys(RUN_KINDS).join(", ")}`);
  return kind;
}

export interface TrainSummary {
  runDir: string;
  task: NonNullable<RunConfig["task"]>;
  labels: string[];
  train: TrainResult;
  /** The held-out report of the best checkpoint (null without validation data). */
  evaluation: TaskReport | null;
  seconds: number;
  /** Samples whose backbone features were computed (a frozen backbone computes each once). */
  featureComputations?: number;
}

/**
 * The model as the run trains it: model.adapter's PEFT adapter loaded, then the adaptation plan applied
 * (components left frozen stay frozen, the loaded adapter's layers included).
 */
export async function adaptRunModel(vlm: VisionLanguageModel, config: RunConfig, log?: Log): Promise<void> {
  if (config.model?.adapter) {
    const loaded = await loadAdapter(vlm.model, config.model.adapter);
    log?.(`adapter: ${config.model.adapter} (${loaded.wrapped.length} LoRA layer(s))`);
  }
  if (isFrozen(config)) vlm.model.freeze();
  else adaptModel(vlm.model, adaptationPlan(config), log, componentPrefixesOf(vlm));
}

export interface TrainRunOptions {
  /** Aborting it ends training after the current step with checkpoints/last saved (resume continues from there). */
  signal?: AbortSignal;
}

/** Trains as the configuration says and evaluates the best checkpoint on the validation data. */
export async function trainRun(input: RunConfig, log: Log = console.log, options: TrainRunOptions = {}): Promise<TrainSummary> {
  const started = performance.now();
  const config = resolveRunConfig(input);
  const folder = new RunFolder(config.output_dir!);
  return folder.withLock(async () => {
    const { source, options: loadOptions } = modelSource(config);
    const vlm = await loadVlm(source, loadOptions);
    try {
      // random base weights are kept, or the adapter and head could never be used again
      if (vlm.randomInit) vlm.saveFolder(folder.modelDir);
      await adaptRunModel(vlm, config, log);
      manualSeed(config.seed!);
      const kind = runKind(config.task);
      const context = { config, vlm, media: new MediaCache(config.data!.num_frames!), folder, log };
      const data = kind.trainingData(context);
      folder.writeConfig(config, data.labels);
      folder.writeMedia(data.media);
      log(`data: ${data.description}`);
      const task = kind.createTask(context, data.labels, { featureCache: true });
      try {
        const batchSize = evalBatchSize(config);
        task.prepare?.(data.val ? [data.train, data.val] : [data.train], { log, batchSize, progress: config.progress !== false });
        const result = await fit(task, data.train, data.val, config, log, options.signal);
        const summary = (evaluation: TaskReport | null): TrainSummary => ({
          runDir: folder.dir, task: config.task!, labels: data.labels, train: result, evaluation, seconds: (performance.now() - started) / 1000,
          featureComputations: "featureComputations" in task ? (task.featureComputations as number) : undefined,
        });
        // an interrupted run is not finished: no adapter or report until it is resumed
        if (result.stopReason === "interrupted") return summary(null);
        loadBest(task, result);
        const note = kind.afterTraining?.(task);
        if (note) log(note);
        if (usesLora(config)) saveAdapter(vlm.model, folder.adapterDir, vlm.randomInit ? folder.modelDir : vlm.folder);
        const evaluation = data.val ? task.report(data.val, { split: "val", outDir: folder.evalDir("val"), batchSize, progress: config.progress !== false }) : null;
        if (evaluation) log(`held-out (val) report, best checkpoint:\n${evaluation.text}`);
        return summary(evaluation);
      } finally {
        task.dispose();
      }
    } finally {
      vlm.dispose();
    }
  });
}

/** Runs the Trainer and frees its optimizer state (the weights stay with the task). */
async function fit<B extends Batch>(
  task: Task<B>, trainData: DataSource<B>, valData: DataSource<B> | null, config: RunConfig, log: Log, signal?: AbortSignal,
): Promise<TrainResult> {
  const trainer = new Trainer(task, trainData, valData, { ...trainOptions(config, config.progress === false ? log : undefined), signal });
  try {
    return await trainer.fit();
  } finally {
    trainer.optimizer.dispose();
  }
}

/** Puts the best checkpoint's weights (else the last's) into the task's live tensors. */
function loadBest(task: TrainTask<never>, result: TrainResult): void {
  loadCheckpointFile(task, join(result.best?.dir ?? result.lastCheckpoint, "weights.safetensors"));
}

/** Reads a checkpoint's weights.safetensors into the task (the file's tensors are freed afterwards). */
export function loadCheckpointFile(task: Pick<TrainTask<never>, "loadCheckpointTensors">, file: string): void {
  const tensors: Map<string, Tensor> = readSafetensors(file);
  try {
    task.loadCheckpointTensors(tensors);
  } finally {
    dispose([...tensors.values()]);
  }
}
