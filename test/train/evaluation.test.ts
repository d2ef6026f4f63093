// Evaluation inside the loop: the best checkpoint follows bestMetric / bestMode, early stopping counts evaluations
// without improvement, and the run folder holds train_options.json, metrics.jsonl and TensorBoard events that
// agree with what each step reported.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { rand, readSafetensors } from "../../src/torch/index.js";
import { Trainer, readEventFile, readMetrics, type DataSource, type TrainOptions, type TrainerStateFile } from "../../src/train/index.js";
import { ClassifierTask, classSource, makeClassData, snapshot, temporaryRunDir, type ClassBatch } from "./helpers.js";

const train = classSource(makeClassData(24, 21));
const evalData = classSource(makeClassData(9, 22));

/** A classifier whose evaluate() reports a scripted sequence, to place the best evaluation where the test wants. */
class ScriptedTask extends ClassifierTask {
  evaluations = 0;
  constructor(readonly script: Record<string, number>[]) {
    super(1);
  }
  override evaluate(data: DataSource<ClassBatch>, batchSize: number): Record<string, number> {
    const real = super.evaluate(data, batchSize);
    return { ...real, ...this.script[this.evaluations++] };
  }
}

async function run(task: ClassifierTask, options: Partial<TrainOptions>) {
  const outputDir = temporaryRunDir("eval");
  const weightsAt = new Map<number, Map<string, number[]>>();
  const lines: string[] = [];
  const trainer = new Trainer(task, train, evalData, {
    batchSize: 8, lr: 0.01, outputDir, log: (line) => lines.push(line), onStep: (info) => weightsAt.set(info.step, snapshot(task.model)), ...options,
  });
  const result = await trainer.fit();
  return { result, outputDir, weightsAt, lines, trainer };
}

function assertBestHolds(outputDir: string, weights: Map<string, number[]>) {
  const saved = readSafetensors(join(outputDir, "checkpoints/best/weights.safetensors"));
  for (const [name, values] of weights) assert.deepEqual(saved.get(name)!.dataAsNumbers(), values, `best checkpoint's ${name}`);
  // The best checkpoint holds weights and state only; resuming uses last.
  assert.deepEqual(readdirSync(join(outputDir, "checkpoints/best")).sort(), ["trainer_state.json", "weights.safetensors"]);
}

test("best checkpoint: the evaluation with the highest accuracy (default metric, mode max) wins; ties do not replace it", async () => {
  const task = new ScriptedTask([{ accuracy: 0.5 }, { accuracy: 0.8 }, { accuracy: 0.8 }, { accuracy: 0.7 }]);
  // 24 samples, batch 8: 3 steps/epoch, evaluated at steps 3, 6, 9, 12.
  const { result, outputDir, weightsAt, lines } = await run(task, { epochs: 4 });
  assert.deepEqual(result.evals.map((e) => [e.step, e.metrics.accuracy]), [[3, 0.5], [6, 0.8], [9, 0.8], [12, 0.7]]);
  assert.deepEqual(result.best, { metric: "accuracy", mode: "max", value: 0.8, step: 6, dir: join(outputDir, "checkpoints/best") });
  assertBestHolds(outputDir, weightsAt.get(6)!);
  const bestState = JSON.parse(readFileSync(join(outputDir, "checkpoints/best/trainer_state.json"), "utf8")) as TrainerStateFile;
  assert.equal(bestState.step, 6);
  assert.deepEqual(bestState.lastMetrics!.accuracy, 0.8);
  assert.ok(lines.some((l) => /^eval step 6 epoch 2\.00: accuracy 0\.8000 .* \(best accuracy, saved to/.test(l)), lines.join("\n"));
});

test("best checkpoint: bestMetric loss with mode min, evaluated every 2 steps (and at the last step)", async () => {
  const task = new ScriptedTask([{ loss: 0.9 }, { loss: 0.4 }, { loss: 0.6 }, { loss: 0.3 }]);
  const { result, outputDir, weightsAt } = await run(task, { maxSteps: 7, evalEvery: 2, bestMetric: "loss" });
  assert.deepEqual(result.evals.map((e) => [e.step, e.metrics.loss]), [[2, 0.9], [4, 0.4], [6, 0.6], [7, 0.3]]);
  assert.deepEqual([result.best!.mode, result.best!.step, result.best!.value], ["min", 7, 0.3]);
  assertBestHolds(outputDir, weightsAt.get(7)!);
  await assert.rejects(run(new ScriptedTask([{}]), { maxSteps: 3, bestMetric: "f1" }), /bestMetric 'f1' is not among the evaluation metrics \(accuracy, loss\)/);
});

test("early stopping: stops after `patience` evaluations in a row without improvement", async () => {
  const task = new ScriptedTask([{ accuracy: 0.5 }, { accuracy: 0.6 }, { accuracy: 0.55 }, { accuracy: 0.6 }, { accuracy: 0.9 }]);
  const { result, lines } = await run(task, { epochs: 10, earlyStoppingPatience: 2 });
  assert.equal(result.stopReason, "early_stopping");
  assert.equal(result.steps, 12);
  assert.equal(result.evals.length, 4);
  assert.equal(result.best!.step, 6);
  assert.ok(lines.some((l) => l.startsWith("early stopping: accuracy has not improved for 2 evaluations")));
});

test("metrics.jsonl, train_options.json and TensorBoard events agree with the steps", async () => {
  const task = new ClassifierTask(4);
  const losses: number[] = [];
  const lrs: number[] = [];
  const { result, outputDir } = await run(task, {
    epochs: 2, logEvery: 2, schedule: "linear", warmupSteps: 1, onStep: (info) => (losses.push(info.loss), lrs.push(info.lr)),
  });
  assert.equal(result.steps, 6);
  const records = readMetrics(join(outputDir, "metrics.jsonl"));
  // Logged every 2 steps and at each epoch's end (step 3): windows [1,2], [3], [4], [5,6].
  const trainRecords = records.filter((r) => r.type === "train");
  assert.deepEqual(trainRecords.map((r) => r.step), [2, 3, 4, 6]);
  const windows = [[1, 2], [3], [4], [5, 6]];
  trainRecords.forEach((record, i) => {
    const steps = windows[i];
    const meanLoss = steps.reduce((s, k) => s + losses[k - 1], 0) / steps.length;
    assert.ok(Math.abs((record.loss as number) - meanLoss) < 1e-12, `loss of record ${i}`);
    // Batch 8, no accumulation: loss call k - 1 is step k.
    const calls = steps.map((k) => task.history[k - 1]);
    assert.equal(record.accuracy, calls.reduce((s, c) => s + c.correct, 0) / calls.reduce((s, c) => s + c.total, 0));
    assert.equal(record.lr, lrs[steps.at(-1)! - 1]);
    assert.ok(typeof record.grad_norm === "number" && record.grad_norm > 0);
    assert.ok(typeof record.samples_per_s === "number" && record.samples_per_s > 0);
  });
  assert.deepEqual(trainRecords.map((r) => r.epoch), [2 / 3, 1, 4 / 3, 2]);
  const evalRecords = records.filter((r) => r.type === "eval");
  assert.deepEqual(evalRecords.map(({ step, accuracy, loss }) => ({ step, accuracy, loss })), result.evals.map((e) => ({ step: e.step, ...e.metrics })));

  const options = JSON.parse(readFileSync(join(outputDir, "train_options.json"), "utf8"));
  assert.deepEqual([options.batchSize, options.totalSteps, options.stepsPerEpoch, options.warmupSteps, options.trainSamples], [8, 6, 3, 1, 24]);
  assert.deepEqual(options.optimizerGroups.map((g: { name: string; parameters: string[] }) => [g.name, g.parameters.length]), [["decay", 2], ["no_decay", 4]]);

  const files = readdirSync(join(outputDir, "tensorboard"));
  assert.equal(files.length, 1);
  assert.match(files[0], /^events\.out\.tfevents\.\d{10}\.[^.]+/);
  const events = readEventFile(join(outputDir, "tensorboard", files[0]));
  assert.equal(events[0].fileVersion, "brain.Event:2");
  const lossEvents = events.filter((e) => "train/loss" in e.scalars);
  assert.deepEqual(lossEvents.map((e) => e.step), [2, 3, 4, 6]);
  lossEvents.forEach((e, i) => assert.equal(e.scalars["train/loss"], Math.fround(trainRecords[i].loss as number)));
  const evalEvents = events.filter((e) => "eval/accuracy" in e.scalars);
  assert.deepEqual(evalEvents.map((e) => [e.step, e.scalars["eval/accuracy"]]), result.evals.map((e) => [e.step, Math.fround(e.metrics.accuracy)]));
});

test("evaluation never moves the training's random stream: evaluating every step (drawing random numbers) changes no weight", async () => {
  class RandomEvalTask extends ClassifierTask {
    override evaluate(data: DataSource<ClassBatch>, batchSize: number): Record<string, number> {
      return { ...super.evaluate(data, batchSize), noise: rand([100]).mean().item() };
    }
  }
  const quiet = new RandomEvalTask(5);
  await new Trainer(quiet, train, null, { epochs: 2, batchSize: 8, lr: 0.01, outputDir: temporaryRunDir("rng-eval"), log: () => {} }).fit();
  const busy = new RandomEvalTask(5);
  const { result } = await run(busy, { epochs: 2, evalEvery: 1 });
  assert.equal(result.evals.length, 6);
  assert.notEqual(result.evals[0].metrics.noise, result.evals[1].metrics.noise);
  for (const [name, t] of quiet.model.stateDict()) assert.ok(t.equal(busy.model.stateDict().get(name)!), name);
});
