// Checkpoints are written atomically: a failure while writing leaves the previous checkpoint as it was, and what
// a crash leaves beside the folder (a half-written .tmp, an .old moved aside) is cleaned up or put back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readSafetensors } from "../../src/torch/index.js";
import { Trainer, recoverCheckpointFolder, writeFolderAtomically, type TrainerStateFile } from "../../src/train/index.js";
import { ClassifierTask, classSource, makeClassData, snapshot, temporaryRunDir } from "./helpers.js";

test("writeFolderAtomically: a fill that fails part-way leaves the old folder intact and no temporary behind", () => {
  const root = temporaryRunDir("atomic");
  const dir = join(root, "last");
  writeFolderAtomically(dir, (tmp) => {
    writeFileSync(join(tmp, "a.txt"), "first");
    writeFileSync(join(tmp, "b.txt"), "first");
  });
  assert.throws(
    () =>
      writeFolderAtomically(dir, (tmp) => {
        writeFileSync(join(tmp, "a.txt"), "second");
        throw new Error("disk full (simulated)");
      }),
    /cannot write checkpoint .*last: disk full \(simulated\); the previous checkpoint \(if any\) is unchanged/,
  );
  assert.equal(readFileSync(join(dir, "a.txt"), "utf8"), "first");
  assert.equal(readFileSync(join(dir, "b.txt"), "utf8"), "first");
  assert.deepEqual(readdirSync(root), ["last"]);
  writeFolderAtomically(dir, (tmp) => writeFileSync(join(tmp, "c.txt"), "third"));
  assert.deepEqual(readdirSync(dir), ["c.txt"], "a rewrite replaces the whole folder");
  assert.deepEqual(readdirSync(root), ["last"]);
});

test("recoverCheckpointFolder: removes half-written .tmp-*, puts an .old-* back when the folder is missing", () => {
  const root = temporaryRunDir("recover");
  const dir = join(root, "last");
  mkdirSync(join(root, "last.old-77"));
  writeFileSync(join(root, "last.old-77", "x"), "old complete");
  mkdirSync(join(root, "last.tmp-78"));
  assert.equal(recoverCheckpointFolder(dir), true);
  assert.deepEqual(readdirSync(root), ["last"]);
  assert.equal(readFileSync(join(dir, "x"), "utf8"), "old complete");
  // Both present (the crash came after the second rename): the new folder stays, the old one goes.
  mkdirSync(join(root, "last.old-79"));
  assert.equal(recoverCheckpointFolder(dir), true);
  assert.deepEqual(readdirSync(root), ["last"]);
  assert.equal(recoverCheckpointFolder(join(root, "absent")), false);
});

test("Trainer: a checkpoint write that fails mid-way (weights written, optimizer not) keeps the previous last checkpoint", async () => {
  const outputDir = temporaryRunDir("fail");
  const task = new ClassifierTask(1);
  const weightsAt: Map<string, number[]>[] = [];
  // 16 samples, batch 8: 2 steps per epoch; the last checkpoint is written at steps 2 and 4.
  const trainer = new Trainer(task, classSource(makeClassData(16, 5)), null, {
    epochs: 3, batchSize: 8, lr: 0.01, outputDir, progress: false, log: () => {}, onStep: () => weightsAt.push(snapshot(task.model)),
  });
  const stateDict = trainer.optimizer.stateDict.bind(trainer.optimizer);
  let saves = 0;
  trainer.optimizer.stateDict = () => {
    if (++saves === 2) throw new Error("disk full (simulated)");
    return stateDict();
  };
  await assert.rejects(trainer.fit(), /cannot write checkpoint .*checkpoints\/last: disk full \(simulated\)/);
  const last = join(outputDir, "checkpoints/last");
  assert.deepEqual(readdirSync(join(outputDir, "checkpoints")), ["last"], "no temporary folder may remain");
  const state = JSON.parse(readFileSync(join(last, "trainer_state.json"), "utf8")) as TrainerStateFile;
  assert.equal(state.step, 2);
  const saved = readSafetensors(join(last, "weights.safetensors"));
  for (const [name, values] of weightsAt[1]) assert.deepEqual(saved.get(name)!.dataAsNumbers(), values, `${name} is not the step-2 weight`);
  assert.ok(existsSync(join(last, "optimizer.safetensors")) && existsSync(join(last, "rng_cpu.bin")));

  // And the intact checkpoint resumes.
  const resumed = await new Trainer(new ClassifierTask(2), classSource(makeClassData(16, 5)), null, {
    epochs: 3, batchSize: 8, lr: 0.01, outputDir, progress: false, log: () => {}, resume: true,
  }).fit();
  assert.deepEqual([resumed.resumedFromStep, resumed.steps], [2, 6]);
});
