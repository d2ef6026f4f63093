// Parameter groups: decay only on matrices, user groups by regex (first match wins, own lr / weight decay),
// every trainable parameter in exactly one group, and the errors for orphans and patterns that match nothing.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Module, Tensor } from "../../src/torch/index.js";
import { Trainer, buildParamGroups, trainableParameters, type DataSource, type TrainTask } from "../../src/train/index.js";
import { TinyClassifier, temporaryRunDir } from "./helpers.js";

const groupNames = (groups: { name: string; paramNames: string[] }[]) => Object.fromEntries(groups.map((g) => [g.name, g.paramNames]));

test("default groups: matrices decay; biases, LayerNorm weights and 1-d tensors do not; frozen parameters are left out", () => {
  const model = new TinyClassifier();
  model.norm.bias!.requiresGrad = false;
  const params = trainableParameters([model]);
  const groups = buildParamGroups(params, { lr: 0.1, weightDecay: 0.05 });
  assert.deepEqual(groupNames(groups), {
    decay: ["fc.weight", "out.weight"],
    no_decay: ["fc.bias", "norm.weight", "out.bias"],
  });
  assert.deepEqual(groups.map((g) => [g.lr, g.weightDecay]), [[0.1, 0.05], [0.1, 0]]);
  model.dispose();
});

test("user groups: first match wins, own lr; without weightDecay a group splits into <name> and <name>.no_decay", () => {
  const model = new TinyClassifier();
  const groups = buildParamGroups(trainableParameters([model]), {
    lr: 0.1,
    weightDecay: 0.05,
    rules: [
      { name: "head", match: "^out\\.", lr: 0.5 },
      { name: "norms", match: "norm|out", lr: 0.2, weightDecay: 0.3 },
    ],
  });
  assert.deepEqual(groupNames(groups), {
    head: ["out.weight"],
    "head.no_decay": ["out.bias"],
    norms: ["norm.weight", "norm.bias"],
    decay: ["fc.weight"],
    no_decay: ["fc.bias"],
  });
  const byName = Object.fromEntries(groups.map((g) => [g.name, [g.lr, g.weightDecay]]));
  assert.deepEqual(byName, { head: [0.5, 0.05], "head.no_decay": [0.5, 0], norms: [0.2, 0.3], decay: [0.1, 0.05], no_decay: [0.1, 0] });
  model.dispose();
});

test("several modules: names are prefixed (index by default, or the task's names); tied parameters count once", () => {
  const a = new TinyClassifier();
  const b = new TinyClassifier();
  b.fc = a.fc; // shared submodule
  assert.deepEqual(trainableParameters([a, b]).map((p) => p.name), [
    "0.fc.weight", "0.fc.bias", "0.norm.weight", "0.norm.bias", "0.out.weight", "0.out.bias",
    "1.norm.weight", "1.norm.bias", "1.out.weight", "1.out.bias",
  ]);
  assert.equal(trainableParameters([a, b], ["backbone", "head"])[6].name, "head.norm.weight");
  a.dispose();
  b.norm.dispose();
  b.out.dispose();
});

test("errors: parameters in no group are listed; a pattern matching nothing, a bad regex, a reserved name", () => {
  const model = new TinyClassifier();
  const params = trainableParameters([model]);
  assert.throws(
    () => buildParamGroups(params, { lr: 0.1, weightDecay: 0, defaultGroups: false, rules: [{ name: "head", match: "^out\\." }] }),
    /4 trainable parameter\(s\) belong to no group: fc\.weight, fc\.bias, norm\.weight, norm\.bias/,
  );
  assert.throws(() => buildParamGroups(params, { lr: 0.1, weightDecay: 0, rules: [{ name: "lora", match: "lora_" }] }), /paramGroups\[0\] \('lora'\): match \/lora_\/ selects no trainable parameter/);
  assert.throws(() => buildParamGroups(params, { lr: 0.1, weightDecay: 0, rules: [{ name: "x", match: "(" }] }), /not a valid regular expression/);
  assert.throws(() => buildParamGroups(params, { lr: 0.1, weightDecay: 0, rules: [{ name: "decay", match: "fc" }] }), /default groups/);
  assert.throws(() => buildParamGroups(params, { lr: 0.1, weightDecay: 0, rules: [{ name: "a", match: "fc", lr: -1 }] }), /lr must be a number >= 0/);
  model.dispose();
});

// Loss = 0 * sum of every parameter: every gradient is exactly zero, so one AdamW step changes a parameter only
// through decoupled weight decay, p *= 1 - lr * weightDecay: that shows which group each one is in.
class ZeroGradientTask implements TrainTask {
  readonly model = new TinyClassifier();
  trainableModules(): Module[] {
    return [this.model];
  }
  loss() {
    const terms = this.model.parameters().map((p) => p.sum());
    return { loss: terms.reduce((a, b) => a.add(b)).mul(0) };
  }
  evaluate() {
    return {};
  }
  checkpointTensors(): Map<string, Tensor> {
    return this.model.stateDict();
  }
  loadCheckpointTensors(): void {}
}

test("Trainer: one step with zero gradients decays exactly the decay groups, each with its own lr and weight decay", async () => {
  const task = new ZeroGradientTask();
  const before = new Map(task.model.namedParameters().map(([name, p]) => [name, p.dataAsNumbers()]));
  const data: DataSource = { length: 2, batch: (indices) => ({ size: indices.length }) };
  const trainer = new Trainer(task, data, null, {
    maxSteps: 1, batchSize: 2, lr: 0.1, weightDecay: 0.5, schedule: "constant", outputDir: temporaryRunDir("groups"),
    progress: false, log: () => {}, paramGroups: [{ name: "head", match: "^out\\.", lr: 0.4 }],
  });
  assert.deepEqual(trainer.optimizer.paramGroups.map((g) => [g.name, g.lr, g.weightDecay]), [
    ["head", 0.4, 0.5], ["head.no_decay", 0.4, 0], ["decay", 0.1, 0.5], ["no_decay", 0.1, 0],
  ]);
  await trainer.fit();
  const factor: Record<string, number> = { "fc.weight": 1 - 0.1 * 0.5, "out.weight": 1 - 0.4 * 0.5 };
  for (const [name, p] of task.model.namedParameters()) {
    const expected = before.get(name)!.map((v) => v * (factor[name] ?? 1));
    const got = p.dataAsNumbers();
    got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) <= 1e-6 * Math.abs(expected[i]) + 1e-12, `${name}[${i}]: ${v} vs ${expected[i]}`));
  }
});

test("Trainer: a trainable parameter missing from checkpointTensors() is an error (resume could not restore it)", () => {
  const task = new ZeroGradientTask();
  task.checkpointTensors = () => new Map([["fc.weight", task.model.fc.weight as Tensor]]);
  const data: DataSource = { length: 2, batch: (indices) => ({ size: indices.length }) };
  assert.throws(
    () => new Trainer(task, data, null, { batchSize: 2, lr: 0.1, outputDir: temporaryRunDir("missing"), log: () => {} }),
    /checkpointTensors\(\) leaves out 5 trainable parameter\(s\): fc\.bias, norm\.weight/,
  );
  // Options are checked by name.
  assert.throws(() => new Trainer(new ZeroGradientTask(), data, null, { batchSize: 0, lr: 0.1, outputDir: "x" }), /TrainOptions\.batchSize must be a positive integer, got 0/);
  assert.throws(() => new Trainer(new ZeroGradientTask(), data, null, { batchSize: 2, lr: 0.1, outputDir: "x", lrr: 1 } as never), /unknown option 'lrr'/);
  assert.throws(() => new Trainer(new ZeroGradientTask(), data, null, { batchSize: 2, lr: 0.1, outputDir: "x", earlyStoppingPatience: 2 }), /needs evaluation data/);
});
