// `vlmkit train` as a library call: a run configuration in, a run folder out. Loads the model through the VLM
// interface, adapts it per component, builds the task of config.task, trains it with the Trainer, keeps the best
// checkpoint's weights, saves the PEFT adapter and writes the held-out report.
import { join } from "node:path";
import { dispose, manualSeed, readSafetensors, type Tensor } from "../torch/index.js";
import { adaptModel, saveAdapter } from "../adapt/index.js";
import { MediaCache } from "../data/media.js";
// the model zoo: importing it registers every family with loadVlm
import { componentPrefixesOf, loadVlm } from "../models/index.js";
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

/** Trains as the configuration says and evaluates the best checkpoint on the validation data. */
export async function trainRun(input: RunConfig, log: Log = console.log): Promise<TrainSummary> {
  const started = performance.now();
  const config = resolveRunConfig(input);
  const folder = new RunFolder(config.output_dir!);
  return folder.withLock(async () => {
    const { source, options } = modelSource(config);
    const vlm = await loadVlm(source, options);
    try {
      // random base weights are kept, or the adapter and head could never be used again
      if (vlm.randomInit) vlm.saveFolder(folder.modelDir);
      if (!isFrozen(config)) adaptModel(vlm.model, adaptationPlan(config), log, componentPrefixesOf(vlm));
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
        task.prepare?.(data.val ? [data.train, data.val] : [data.train], { log, batchSize });
        const result = await fit(task, data.train, data.val, config, log);
        loadBest(task, result);
        const note = kind.afterTraining?.(task);
        if (note) log(note);
        if (usesLora(config)) saveAdapter(vlm.model, folder.adapterDir, vlm.randomInit ? folder.modelDir : vlm.folder);
        const evaluation = data.val ? task.report(data.val, { split: "val", outDir: folder.evalDir("val"), batchSize }) : null;
        if (evaluation) log(`held-out (val) report, best checkpoint:\n${evaluation.text}`);
        return {
          runDir: folder.dir, task: config.task!, labels: data.labels, train: result, evaluation, seconds: (performance.now() - started) / 1000,
          featureComputations: "featureComputations" in task ? (task.featureComputations as number) : undefined,
        };
      } finally {
        task.dispose();
      }
    } finally {
      vlm.dispose();
    }
  });
}

/** Runs the Trainer and frees its optimizer state (the weights stay with the task). */
async function fit<B extends Batch>(task: Task<B>, trainData: DataSource<B>, valData: DataSource<B> | null, config: RunConfig, log: Log): Promise<TrainResult> {
  const trainer = new Trainer(task, trainData, valData, trainOptions(config, config.progress === false ? log : undefined));
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
