// The contract every task implements: the Trainer's TrainTask (loss, evaluate, checkpoint tensors) plus what a run
// needs around training — work before the first step, a report on held-out data written to a folder, and freeing
// what the task owns. Classification and generation implement it today; contrastive, detection and segmentation
// implement the same contract.
import type { Batch, DataSource, TrainTask } from "../train/index.js";
import type { ClassificationReport } from "../eval/metrics.js";

export interface ReportOptions {
  /** The split's name ("val", "test"), recorded in the report. */
  split: string;
  /** Where the report's files go (report.json, report.txt, ...); none are written without it. */
  outDir?: string;
  batchSize?: number;
  /** A progress bar on a terminal while the work runs (default true). */
  progress?: boolean;
}

export interface PrepareOptions {
  log?: (line: string) => void;
  batchSize?: number;
  /** A progress bar on a terminal while the work runs (default true). */
  progress?: boolean;
}

export interface TaskReport {
  split: string;
  /** The headline numbers: accuracy, loss, top-k, ... */
  metrics: Record<string, number>;
  /** The report as text, as written to report.txt. */
  text: string;
  /** Per-class precision / recall / F1 when the task's outputs are classes. */
  report?: ClassificationReport;
}

export interface Task<B extends Batch = Batch> extends TrainTask<B> {
  /** "classification", "generation", ... */
  readonly kind: string;
  /** Work to do once before training or scoring these data (caching frozen features, statistics); optional. */
  prepare?(data: DataSource<B>[], options?: PrepareOptions): void;
  /** Scores the data with the current weights and writes the report's files to options.outDir. */
  report(data: DataSource<B>, options: ReportOptions): TaskReport;
  /** Frees what the task owns (heads, caches); the model belongs to the caller. */
  dispose(): void;
}
