// The loop holds flat memory: after the optimizer state exists, every step (with accumulation, evaluation,
// checkpoints and logging in between) ends with the same number of live tensors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { liveTensorCount } from "../../src/torch/index.js";
import { Trainer } from "../../src/train/index.js";
import { ClassifierTask, classSource, makeClassData, temporaryRunDir } from "./helpers.js";

test("live tensors stay flat across steps, evaluations and checkpoint writes, and fit() leaves only the optimizer state", async () => {
  const task = new ClassifierTask(3);
  const counts: number[] = [];
  const trainer = new Trainer(task, classSource(makeClassData(30, 8)), classSource(makeClassData(10, 9)), {
    epochs: 4, batchSize: 4, gradAccumulation: 2, lr: 0.01, maxGradNorm: 1, evalEvery: 3, saveEvery: 2, logEvery: 1,
    outputDir: temporaryRunDir("memory"), progress: false, log: () => {}, onStep: () => counts.push(liveTensorCount()),
  });
  const before = liveTensorCount();
  const result = await trainer.fit();
  assert.equal(result.steps, 16);
  assert.deepEqual(counts.slice(1), new Array(counts.length - 1).fill(counts[1]), `live tensors per step: ${counts.join(", ")}`);
  // AdamW keeps exp_avg, exp_avg_sq and step for each of the 6 parameters.
  assert.equal(liveTensorCount(), before + 6 * 3);
  trainer.optimizer.dispose();
  assert.equal(liveTensorCount(), before);
});
