// Data that trains wrongly without a word: an empty train or val file is an error naming it; a single training
// record trains with a finite loss (its features have no spread to standardize by).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTinyLlavaFolder, vocabularyOf } from "../../src/models/llava/tiny_folder.js";
import { writeSyntheticDataset, SYNTHETIC_QUESTION, syntheticImageLabels } from "../../src/data/synthetic.js";
import { readMetrics } from "../../src/train/metrics_log.js";
import { trainRun } from "../../src/runs/train.js";
import type { RunConfig } from "../../src/runs/config.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-bad-data-"));
const words = vocabularyOf([SYNTHETIC_QUESTION, ...syntheticImageLabels().map((l) => `a ${l}`)]);
const modelConfig = writeTinyLlavaFolder(join(dir, "tiny"), { words, visionHidden: 16, textHidden: 16, heads: 2 });
const data = writeSyntheticDataset(join(dir, "data"), { trainImages: 6, valImages: 4, trainClips: 0, seed: 5 });
const config = (name: string, train: string, val: string): RunConfig => ({
  task: "classification", output_dir: join(dir, "runs", name), model: { config: modelConfig, device: "cpu" },
  data: { train, val, labels: data.labels }, head: { hidden_size: 0, cache_dir: null }, epochs: 3, batch_size: 2, progress: false,
});

test("an empty train or val file is an error naming the file", async () => {
  const empty = join(data.dir, "empty.jsonl");
  writeFileSync(empty, "");
  await assert.rejects(trainRun(config("empty-train", empty, data.valJsonl), () => {}), /empty\.jsonl.*no records/);
  await assert.rejects(trainRun(config("empty-val", data.trainJsonl, empty), () => {}), /empty\.jsonl.*no records/);
});

test("a single training record trains with a finite loss", { timeout: 60_000 }, async () => {
  const one = join(data.dir, "one.jsonl");
  writeFileSync(one, readFileSync(data.trainJsonl, "utf8").split("\n")[0].replace(/"image":\s*"/, `"image": "${data.dir}/`) + "\n");
  const summary = await trainRun(config("one", one, data.valJsonl), () => {});
  const losses = readMetrics(join(summary.runDir, "metrics.jsonl")).map((m) => m.loss).filter((l) => l !== undefined);
  assert.ok(losses.length > 0 && losses.every((l) => Number.isFinite(l)), `losses ${JSON.stringify(losses)}`);
  assert.ok(Number.isFinite(summary.evaluation!.metrics.loss));
});
