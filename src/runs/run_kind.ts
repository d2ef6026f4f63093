// What a run needs of each task kind beyond the Task contract: its data from the run configuration, the task built
// from it, and predictions for command-line inputs. src/runs/train.ts and use.ts dispatch on config.task here.
import type { Batch, DataSource } from "../train/index.js";
import type { VisionLanguageModel } from "../models/vlm.js";
import type { MediaCache, TrainingMedia } from "../data/media.js";
import type { RgbImage } from "../data/image.js";
import type { Task } from "../tasks/task.js";
import type { RunConfig } from "./config.js";
import type { RunFolder } from "./run_folder.js";
import type { Log } from "./resolve.js";

/** What a task kind's glue gets: the resolved configuration, the model, decoded media and the run folder. */
export interface RunContext {
  config: RunConfig;
  vlm: VisionLanguageModel;
  media: MediaCache;
  folder: RunFolder;
  log: Log;
}

export interface RunData<B extends Batch> {
  train: DataSource<B>;
  val: DataSource<B> | null;
  /** The label map written to labels.json. */
  labels: string[];
  /** One line for the log: how many records of what. */
  description: string;
  /** How many training and validation records had images and how many a video (media.json: what predict takes). */
  media: TrainingMedia;
}

/** One command-line input of `vlmkit predict`: the file and its decoded images. */
export interface PredictInput {
  input: string;
  images: RgbImage[];
}

export interface PredictionOutput {
  input: string;
  predictions?: { label: string; probability: number }[];
  answer?: string;
  label?: string | null;
}

export interface RunKind<B extends Batch = Batch, T extends Task<B> = Task<B>> {
  /** The training and validation data (validation: data.val, else val_ratio of train split off with the seed). */
  trainingData(context: RunContext): RunData<B>;
  /** Data to evaluate: a file, else the split held out of data.train. */
  evalData(context: RunContext, labels: string[], path: string | undefined): DataSource<B>;
  /** The task; with featureCache, work it can keep between runs (frozen features) goes to the configured cache. */
  createTask(context: RunContext, labels: string[], options: { featureCache: boolean }): T;
  /** A line for the log after training, if the kind has something to say (samples it skipped). */
  afterTraining?(task: T): string | null;
  predict(task: T, context: RunContext, inputs: PredictInput[], options: { topK?: number; prompt?: string }): PredictionOutput[];
}
