// The trainer on a tiny classifier: exact resume after a crash, gradient accumulation, parameter groups,
// the NaN guard, early stopping with the best checkpoint, metrics.jsonl and atomic checkpoints.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Linear, Dropout, Sequential, F, tensor, tidy, noGrad, full, type Tensor, type Module } from "../../src/index.js";
import { Trainer, buildParamGroups, trainableParameters, readMetrics, type TrainTask, type DataSource, type Batch } from "../../src/train/index.js";

interface XY extends Batch { x: Tensor; y: Tensor }

function data(n: number): DataSource<XY> {
  const points = Array.from({ length: n }, (_, i) => [Math.sin(i), Math.cos(3 * i), (i % 7) / 7, ((i * 13) % 5) / 5]);
  const labels = points.map((p) => (p[0] + p[1] > 0.5 ? 0 : p[2] > 0.5 ? 1 : 2));
  return {
    length: n,
    batch: (idx) => ({ size: idx.length, x: tensor(idx.map((i) => points[i]), { dtype: "float64" }), y: tensor(idx.map((i) => labels[i]), { dtype: "int64" }) }),
  };
}

class Task implements TrainTask<XY> {
  model: Sequential;
  calls = 0;
  constructor(public dropout = 0.2, public lossHook: (call: number, loss: Tensor) => Tensor = (_, l) => l) {
    this.model = new Sequential(new Linear(4, 8, { dtype: "float64" }), new Dropout(dropout), new Linear(8, 3, { dtype: "float64" }));
    noGrad(() => this.model.parameters().forEach((p, i) => p.copy_(full(p.shape, 0, { dtype: "float64" }).add(0.1 * ((i % 3) - 1)).add(tensor(Array.from({ length: p.numel() }, (_, k) => Math.sin(k + i)), { dtype: "float64" }).reshape(p.shape).mul(0.3)))));
  }
  trainableModules(): Module[] { return [this.model]; }
  loss(batch: XY) { this.model.train(); return { loss: this.lossHook(++this.calls, F.crossEntropy(this.model.forward(batch.x), batch.y)) }; }
  evaluate(d: DataSource<XY>) {
    this.model.eval();
    return noGrad(() => tidy(() => { const b = d.batch(Array.from({ length: d.length }, (_, i) => i)); return { accuracy: this.model.forward(b.x).argmax(-1).eq(b.y).float().mean().item() }; }));
  }
  checkpointTensors() { return this.model.stateDict(); }
  loadCheckpointTensors(t: Map<string, Tensor>) { this.model.loadStateDict(t); }
}

const dir = () => mkdtempSync(join(tmpdir(), "vlmkit-train-"));
const weights = (t: Task) => t.model.parameters().map((p) => p.toArray());
const quiet = { log: () => {} };

test("a run interrupted by a crash and resumed reaches bit-identical weights", async () => {
  const options = { batchSize: 4, lr: 0.05, epochs: 3, warmupSteps: 2, maxGradNorm: 1, seed: 7, ...quiet };
  const whole = new Task();
  await new Trainer(whole, data(30), null, { ...options, outputDir: dir() }).fit();

  const out = dir();
  const crashing = new Task(0.2, (call, loss) => { if (call === 13) throw new Error("power cut"); return loss; });
  await assert.rejects(new Trainer(crashing, data(30), null, { ...options, outputDir: out }).fit(), /power cut/);
  const resumed = new Task();
  const result = await new Trainer(resumed, data(30), null, { ...options, outputDir: out, resume: true }).fit();
  assert.equal(result.steps, 24);
  assert.deepEqual(weights(resumed), weights(whole));
});

test("2 accumulated micro-batches of 4 equal one batch of 8", async () => {
  const a = new Task(0);
  const b = new Task(0);
  const common = { lr: 0.05, epochs: 2, schedule: "constant" as const, seed: 3, ...quiet };
  await new Trainer(a, data(32), null, { ...common, batchSize: 8, outputDir: dir() }).fit();
  await new Trainer(b, data(32), null, { ...common, batchSize: 4, gradAccumulation: 2, outputDir: dir() }).fit();
  weights(a).flat(2).forEach((v, i) => assert.ok(Math.abs((v as number) - (weights(b).flat(2)[i] as number)) < 1e-12, `weight ${i}`));
});

test("parameter groups: decay for matrices, none for biases, user rules first", () => {
  const task = new Task();
  const groups = buildParamGroups(trainableParameters([task.model]), { lr: 1e-3, weightDecay: 0.1, rules: [{ name: "head", match: "^2\\.", lr: 1e-2 }] });
  assert.deepEqual(groups.map((g) => [g.name, g.paramNames, g.lr, g.weightDecay]), [
    ["head", ["2.weight"], 1e-2, 0.1],
    ["head.no_decay", ["2.bias"], 1e-2, 0],
    ["decay", ["0.weight"], 1e-3, 0.1],
    ["no_decay", ["0.bias"], 1e-3, 0],
  ]);
  task.model.freeze();
  assert.throws(() => new Trainer(task, data(4), null, { batchSize: 4, lr: 1, outputDir: dir() }), /no parameter with requiresGrad/);
});

test("non-finite losses skip the step and lower the lr; too many in a row stop the run", async () => {
  const task = new Task(0, (call, loss) => (call === 3 ? loss.mul(Number.NaN) : loss));
  const lines: string[] = [];
  const trainer = new Trainer(task, data(16), null, { batchSize: 4, lr: 0.1, maxSteps: 4, schedule: "constant", outputDir: dir(), log: (l) => lines.push(l) });
  const result = await trainer.fit();
  assert.equal(result.skippedSteps, 1);
  assert.ok(lines.some((l) => /step 3: loss is NaN; step skipped, base lr lowered to 5\.000e-2/.test(l)));
  assert.equal(trainer.optimizer.paramGroups[0].lr, 0.05);
  const always = new Task(0, (_, loss) => loss.mul(Number.NaN));
  await assert.rejects(new Trainer(always, data(16), null, { batchSize: 4, lr: 0.1, maxSteps: 10, outputDir: dir(), nanGuard: { maxConsecutive: 3, lrFactor: 0.5 }, ...quiet }).fit(), /3 steps in a row had a non-finite value/);
});

test("evaluation each epoch keeps the best checkpoint, stops early, and logs metrics.jsonl", async () => {
  const out = dir();
  let evals = 0;
  const task = new Task(0);
  task.evaluate = () => ({ accuracy: [0.5, 0.7, 0.6, 0.65, 0.9][evals++] });
  const result = await new Trainer(task, data(8), data(8), { batchSize: 4, lr: 0.01, epochs: 5, earlyStoppingPatience: 2, logEvery: 1, outputDir: out, ...quiet }).fit();
  assert.equal(result.stopReason, "early_stopping");
  assert.deepEqual(result.best, { metric: "accuracy", mode: "max", value: 0.7, step: 4, dir: join(out, "checkpoints", "best") });
  assert.equal(result.epoch, 4);
  const state = JSON.parse(readFileSync(join(out, "checkpoints", "best", "trainer_state.json"), "utf8"));
  assert.equal(state.best.step, 4);
  const records = readMetrics(join(out, "metrics.jsonl"));
  assert.equal(records.filter((r) => r.type === "eval").length, 4);
  assert.equal(records.filter((r) => r.type === "train").length, 8);
});

test("a failure while writing a checkpoint leaves the previous one intact and no temporary folder", async () => {
  const out = dir();
  const task = new Task(0);
  let saves = 0;
  const original = task.checkpointTensors.bind(task);
  // Call 1 is the trainer's check that every trainable parameter is saved; then one per save (every step here).
  task.checkpointTensors = () => { if (++saves === 4) throw new Error("disk full"); return original(); };
  await assert.rejects(new Trainer(task, data(16), null, { batchSize: 4, lr: 0.01, maxSteps: 4, saveEvery: 1, outputDir: out, ...quiet }).fit(), /disk full/);
  const state = JSON.parse(readFileSync(join(out, "checkpoints", "last", "trainer_state.json"), "utf8"));
  assert.equal(state.step, 2, "the step-2 checkpoint is still whole");
  assert.ok(!existsSync(join(out, "checkpoints", `last.tmp-${process.pid}`)));
});
