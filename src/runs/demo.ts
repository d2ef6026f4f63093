// `vlmkit demo`: the whole product on a laptop CPU in a few minutes. It generates a synthetic visual dataset
// (shapes x colours at random positions, and clips whose class is the direction of motion), builds a tiny
// LLaVA-shaped model with random weights, and runs four trainings through the same code as `vlmkit train`:
//   1. a classification head on frozen, cached features (images)
//   2. LoRA on the language model + the head, end to end (images)
//   3. generative fine-tuning (LoRA + projector) on conversations, answers parsed back to classes (images)
//   4. a classification head on frozen features of 8-frame clips (video: one frame cannot tell the class)
// then prints the held-out reports and compares head and generation. It fails (exit 1) below 90% top-1 for
// the frozen-feature head.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeSyntheticDataset, syntheticImageLabels, DIRECTIONS, SYNTHETIC_QUESTION, SYNTHETIC_VIDEO_QUESTION } from "../data/synthetic.js";
import { writeTinyLlavaFolder, vocabularyOf } from "../models/llava/tiny_folder.js";
import { runConfigToYaml, type RunConfig } from "./config.js";
import { trainRun, type TrainSummary } from "./train.js";
import type { Log } from "./resolve.js";

export interface DemoOptions {
  /** Where data, model and runs go (default ./vlmkit-demo). */
  dir?: string;
  /** Smaller data and fewer steps (tests). */
  quick?: boolean;
  /** The accuracy the frozen-feature head must reach (default 0.9). */
  floor?: number;
  log?: Log;
}

export interface DemoStage {
  name: string;
  what: string;
  summary: TrainSummary;
}

export interface DemoResult {
  stages: DemoStage[];
  headAccuracy: number;
  passed: boolean;
  seconds: number;
}

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const log = options.log ?? console.log;
  const dir = resolve(options.dir ?? "vlmkit-demo");
  const floor = options.floor ?? 0.9;
  const quick = options.quick ?? false;
  const started = performance.now();
  for (const sub of ["data", "tiny-llava", "runs"]) if (existsSync(join(dir, sub))) rmSync(join(dir, sub), { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  log(`vlmkit demo: everything goes to ${dir}`);
  const t0 = performance.now();
  const files = writeSyntheticDataset(join(dir, "data"), {
    trainImages: 1800,
    valImages: 450,
    trainClips: quick ? 480 : 960,
    valClips: 200,
    seed: 0,
  });
  log(`data: ${files.dir} — images of ${syntheticImageLabels().length} classes (colour x shape, random position), clips of ${DIRECTIONS.length} motion directions, conversations for SFT (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const words = vocabularyOf([SYNTHETIC_QUESTION, SYNTHETIC_VIDEO_QUESTION, ...syntheticImageLabels().map((l) => `a ${l}`), ...DIRECTIONS]);
  const modelConfig = writeTinyLlavaFolder(join(dir, "tiny-llava"), { words });
  log(`model: ${modelConfig} — tiny LLaVA (CLIP vision tower, projector, Llama language model), random weights`);

  const common: RunConfig = { model: { config: modelConfig, device: "cpu" }, seed: 0, progress: false, overwrite: true };
  const imageData = { train: files.trainJsonl, val: files.valJsonl, labels: files.labels, prompt: SYNTHETIC_QUESTION };
  const runs: { name: string; what: string; config: RunConfig }[] = [
    {
      name: "images-head",
      what: "head on frozen, cached features",
      config: {
        ...common, task: "classification", output_dir: join(dir, "runs", "images-head"), data: imageData,
        head: { pooling: "mean", hidden_size: 256, dropout: 0.1 },
        epochs: 40, batch_size: 64, learning_rate: 3e-3, weight_decay: 0.01, warmup_ratio: 0.05, schedule: "cosine", eval_every: 400,
      },
    },
    {
      name: "images-lora",
      what: "LoRA (language model) + head, end to end",
      config: {
        ...common, task: "classification", output_dir: join(dir, "runs", "images-lora"), data: imageData,
        components: { language: { mode: "lora", r: 8, alpha: 16, target_modules: ["q_proj", "v_proj"] } },
        head: { pooling: "mean", hidden_size: 256, dropout: 0.1 },
        epochs: quick ? 4 : 12, batch_size: 32, learning_rate: 3e-3, warmup_ratio: 0.05, schedule: "cosine",
      },
    },
    {
      name: "images-sft",
      what: "generative fine-tuning (LoRA + projector), answers parsed to classes",
      config: {
        ...common, task: "generation", output_dir: join(dir, "runs", "images-sft"),
        data: { train: files.sftTrainJsonl, val: files.sftValJsonl, labels: files.labels },
        components: { projector: { mode: "full" }, language: { mode: "lora", r: 16, alpha: 32, target_modules: "all-linear" } },
        generation: { max_new_tokens: 6 },
        epochs: quick ? 3 : 8, batch_size: 32, learning_rate: 3e-3, warmup_ratio: 0.05, schedule: "cosine",
      },
    },
    {
      name: "video-head",
      what: "head on frozen features of 8-frame clips",
      config: {
        ...common, task: "classification", output_dir: join(dir, "runs", "video-head"),
        data: { train: files.videoTrainJsonl!, val: files.videoValJsonl!, labels: files.videoLabels!, prompt: SYNTHETIC_VIDEO_QUESTION, num_frames: 8 },
        head: { pooling: "mean", hidden_size: 256, dropout: 0.1 },
        epochs: 60, batch_size: 64, learning_rate: 3e-3, warmup_ratio: 0.05, schedule: "cosine", eval_every: 300,
      },
    },
  ];

  const stages: DemoStage[] = [];
  for (const [i, run] of runs.entries()) {
    const runFile = join(dir, "runs", `${run.name}.yaml`);
    mkdirSync(join(dir, "runs"), { recursive: true });
    writeFileSync(runFile, runConfigToYaml(run.config, `vlmkit demo: ${run.what}\nrerun with: vlmkit train --config ${runFile}`));
    log(`\n[${i + 1}/${runs.length}] ${run.name}: ${run.what}  (vlmkit train --config ${runFile})`);
    const summary = await trainRun(run.config, (line) => log(`  ${line}`));
    stages.push({ name: run.name, what: run.what, summary });
    log(`  done in ${summary.seconds.toFixed(1)} s: held-out top-1 ${summary.evaluation?.report ? pct(summary.evaluation.report.accuracy) : "n/a"}`);
  }

  const byName = new Map(stages.map((s) => [s.name, s]));
  const accuracy = (name: string) => byName.get(name)?.summary.evaluation?.report?.accuracy ?? 0;
  const headAccuracy = accuracy("images-head");
  const seconds = (performance.now() - started) / 1000;
  log("\n=== summary (held-out data, best checkpoints) ===");
  for (const stage of stages) {
    const evaluation = stage.summary.evaluation;
    const report = evaluation?.report;
    const extra = stage.summary.task === "generation" && evaluation
      ? `  (unparseable answers ${pct(evaluation.metrics.unparseable ?? 0)})`
      : stage.summary.featureComputations !== undefined ? `  (backbone passes: ${stage.summary.featureComputations} samples)` : "";
    log(`${stage.name.padEnd(12)} ${stage.what.padEnd(70)} top-1 ${report ? pct(report.accuracy).padStart(6) : "   n/a"}  macro-F1 ${report ? report.macro.f1.toFixed(3) : "n/a"}  ${stage.summary.seconds.toFixed(1)} s${extra}`);
  }
  const sft = byName.get("images-sft")?.summary.evaluation?.report;
  const lora = byName.get("images-lora")?.summary.evaluation?.report;
  if (sft) {
    log(`\nhead vs generation on the same held-out images: head ${pct(headAccuracy)} (frozen) / ${lora ? pct(lora.accuracy) : "n/a"} (LoRA) vs parsed answers ${pct(sft.accuracy)}`);
  }
  log(`reports: ${join(dir, "runs", "<run>", "eval", "val")} (report.txt, report.json, confusion.csv, confusion.png)`);
  const passed = headAccuracy >= floor;
  log(`\nfrozen-feature head: ${pct(headAccuracy)} top-1 on held-out images (floor ${pct(floor)}): ${passed ? "PASS" : "FAIL"}; total ${seconds.toFixed(0)} s`);
  return { stages, headAccuracy, passed, seconds };
}
