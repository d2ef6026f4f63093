// Records whose media cannot be decoded: without skip_bad the run stops with an error naming the record
// (file:line) and the media file; with skip_bad such records are dropped and reported, for classification and for
// conversations, in train and in eval.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTinyLlavaFolder, vocabularyOf } from "../../src/models/llava/tiny_folder.js";
import { writeSyntheticDataset, SYNTHETIC_QUESTION, syntheticImageLabels } from "../../src/data/synthetic.js";
import { evalRun } from "../../src/runs/use.js";
import { trainRun } from "../../src/runs/train.js";
import type { RunConfig } from "../../src/runs/config.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-bad-media-"));
const words = vocabularyOf([SYNTHETIC_QUESTION, ...syntheticImageLabels().map((l) => `a ${l}`)]);
const modelConfig = writeTinyLlavaFolder(join(dir, "tiny"), { words, visionHidden: 32, textHidden: 32, heads: 2 });
const files = writeSyntheticDataset(join(dir, "data"), { trainImages: 8, valImages: 4, trainClips: 0, seed: 2 });

// a PNG cut short, and a JSONL whose third row points at it
const firstImage = JSON.parse(readFileSync(files.trainJsonl, "utf8").split("\n")[0]).image as string;
const corrupt = join(dir, "data", "corrupt.png");
writeFileSync(corrupt, readFileSync(join(dir, "data", firstImage)).subarray(0, 60));
const rows = readFileSync(files.trainJsonl, "utf8").trim().split("\n");
rows.splice(2, 0, JSON.stringify({ image: "corrupt.png", label: JSON.parse(rows[0]).label }));
const withCorrupt = join(dir, "data", "with_corrupt.jsonl");
writeFileSync(withCorrupt, rows.join("\n") + "\n");

const config = (name: string, skipBad: boolean): RunConfig => ({
  task: "classification", output_dir: join(dir, "runs", name), model: { config: modelConfig, device: "cpu" },
  data: { train: withCorrupt, val: files.valJsonl, labels: files.labels, prompt: SYNTHETIC_QUESTION, skip_bad: skipBad },
  head: { hidden_size: 0, cache_dir: null }, epochs: 1, batch_size: 4, seed: 0, progress: false,
});

test("an undecodable image stops the run with an error naming the record's file:line and the image", { timeout: 60_000 }, async () => {
  await assert.rejects(trainRun(config("strict", false), () => {}), (error: Error) => {
    assert.match(error.message, new RegExp(`with_corrupt\\.jsonl:3: .*corrupt\\.png: invalid PNG`));
    return true;
  });
});

test("with skip_bad the record is dropped and reported; training and eval go on with the rest", { timeout: 60_000 }, async () => {
  const lines: string[] = [];
  const summary = await trainRun(config("skip", true), (line) => lines.push(line));
  const output = lines.join("\n");
  assert.match(output, /skipped 1 bad record\(s\):\n\s+\S*with_corrupt\.jsonl:3: \S*corrupt\.png: invalid PNG/);
  assert.match(output, /data: 8 training and 4 validation records/);
  assert.equal(summary.evaluation!.report!.total, 4);
  // eval of the run on the file with the bad row: the run's skip_bad applies, the report counts the good rows
  const evalLines: string[] = [];
  const evaluation = await evalRun(summary.runDir, { data: withCorrupt }, (line) => evalLines.push(line));
  assert.equal(evaluation.report!.total, 8);
  assert.match(evalLines.join("\n"), /with_corrupt\.jsonl:3/);
});
