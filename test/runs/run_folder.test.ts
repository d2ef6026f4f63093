// The run folder: its lock refuses a second writer while the first lives and is taken over when that process is
// gone; trainRun holds it and leaves none behind; run.yaml records absolute paths, so eval works from elsewhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { RunFolder } from "../../src/runs/run_folder.js";
import { readRunConfig } from "../../src/runs/config.js";
import { trainRun } from "../../src/runs/train.js";
import { evalRun } from "../../src/runs/use.js";
import { writeTinyLlavaFolder, vocabularyOf } from "../../src/models/llava/tiny_folder.js";
import { writeSyntheticDataset, SYNTHETIC_QUESTION, syntheticImageLabels } from "../../src/data/synthetic.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-runfolder-"));

function writeLock(folder: RunFolder, pid: number): void {
  mkdirSync(folder.dir, { recursive: true });
  writeFileSync(folder.lockFile, JSON.stringify({ pid, host: hostname(), started: "2026-01-01T00:00:00Z", command: "vlmkit train --config x.yaml" }));
}

async function stop(child: ReturnType<typeof spawn>): Promise<void> {
  const exited = new Promise((done) => child.once("exit", done));
  child.kill();
  await exited;
}

test("a live writer's lock refuses a second one, naming it; a dead writer's lock is taken over; unlock removes it", async () => {
  const folder = new RunFolder(join(dir, "locked"));
  const sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
  try {
    writeLock(folder, sleeper.pid!);
    assert.throws(() => folder.lock(), new RegExp(`in use by process ${sleeper.pid} on .* \\(started 2026-01-01T00:00:00Z: vlmkit train --config x\\.yaml\\); wait for it .* or delete .*run\\.lock`));
  } finally {
    await stop(sleeper);
  }
  const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  writeLock(folder, Number(gone.stdout));
  folder.lock();
  assert.equal(JSON.parse(readFileSync(folder.lockFile, "utf8")).pid, process.pid);
  folder.unlock();
  assert.ok(!existsSync(folder.lockFile));
  assert.throws(() => RunFolder.open(join(dir, "nothing")), /is not a run folder \(no run\.yaml\)/);
});

test("trainRun takes the lock (a busy folder fails before any work) and records absolute paths; eval runs from another folder", { timeout: 120_000 }, async () => {
  const words = vocabularyOf([SYNTHETIC_QUESTION, ...syntheticImageLabels().map((l) => `a ${l}`)]);
  const modelConfig = writeTinyLlavaFolder(join(dir, "tiny"), { words, visionHidden: 16, textHidden: 16, heads: 2 });
  const data = writeSyntheticDataset(join(dir, "data"), { trainImages: 16, valImages: 8, trainClips: 0, seed: 2 });
  const rel = (path: string) => relative(process.cwd(), path);
  const config = {
    task: "classification" as const, output_dir: rel(join(dir, "runs", "a")), model: { config: rel(modelConfig), device: "cpu" },
    data: { train: rel(data.trainJsonl), val: rel(data.valJsonl), labels: rel(data.labels) }, head: { hidden_size: 0 }, epochs: 1, batch_size: 8, progress: false,
  };
  const busy = new RunFolder(join(dir, "runs", "a"));
  const sleeper = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
  try {
    writeLock(busy, sleeper.pid!);
    await assert.rejects(trainRun(config, () => {}), /runs[/\\]a is in use by process/);
    assert.ok(!existsSync(join(dir, "runs", "a", "run.yaml")), "nothing written");
  } finally {
    await stop(sleeper);
  }
  const summary = await trainRun(config, () => {});
  assert.ok(!existsSync(busy.lockFile), "the lock is released");
  const saved = readRunConfig(join(summary.runDir, "run.yaml"));
  assert.equal(saved.output_dir, join(dir, "runs", "a"));
  assert.equal(saved.model?.config, modelConfig);
  assert.deepEqual([saved.data?.train, saved.data?.val, saved.data?.labels], [data.trainJsonl, data.valJsonl, data.labels]);
  const cwd = process.cwd();
  process.chdir(tmpdir());
  try {
    const report = await evalRun(summary.runDir, {}, () => {});
    assert.equal(report.report!.total, 8);
  } finally {
    process.chdir(cwd);
  }
});
