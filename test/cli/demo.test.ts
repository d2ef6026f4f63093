// End to end: `vlmkit demo` as the README runs it (synthetic data, tiny LLaVA with random weights, head, LoRA + head,
// generative fine-tuning, video head). The frozen-feature head must reach 90% top-1 on held-out images; the run
// folders must hold what eval / predict need, and reloading a run must give the same scores.
// This is the slowest test of the suite (about 80 s on two cores; the timeout leaves room for a loaded machine).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runDemo } from "../../src/runs/demo.js";
import { evalRun, predictRun } from "../../src/runs/use.js";
import { liveTensorCount } from "../../src/index.js";
import { decodePng } from "../../src/data/png.js";
import { confusionLayout } from "../../src/eval/confusion_png.js";

test("the demo trains every stage and the frozen-feature head reaches the 90% floor on held-out images", { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-demo-"));
  const lines: string[] = [];
  const liveBefore = liveTensorCount();
  const result = await runDemo({ dir, log: (line) => lines.push(line) });
  const output = lines.join("\n");
  assert.ok(result.passed, output);
  assert.ok(result.headAccuracy >= 0.9, `head accuracy ${result.headAccuracy}`);
  assert.deepEqual(result.stages.map((s) => s.name), ["images-head", "images-lora", "images-sft", "video-head"]);
  const stage = (name: string) => result.stages.find((s) => s.name === name)!.summary;

  // the frozen backbone ran once per sample (1800 train + 450 val); later epochs trained the head only
  assert.equal(stage("images-head").featureComputations, 2250);
  assert.ok(stage("images-head").train.steps >= 1000);
  // the held-out report's accuracy is the one computed from its own per-class numbers
  const report = stage("images-head").evaluation!.report!;
  assert.equal(report.total, 450);
  assert.equal(report.accuracy, report.classes.reduce((s, c) => s + c.recall * c.support, 0) / report.total);
  // the other stages learned something real (chance: 11% for 9 classes, 25% for 4 directions)
  assert.ok(stage("images-lora").evaluation!.report!.accuracy > 0.6, output);
  assert.ok(stage("images-sft").evaluation!.report!.accuracy > 0.3, output);
  assert.ok(stage("video-head").evaluation!.report!.accuracy > 0.6, output);
  assert.match(output, /head vs generation on the same held-out images: head \d+\.\d% \(frozen\) \/ \d+\.\d% \(LoRA\) vs parsed answers \d+\.\d%/);
  assert.match(output, /trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: [\d.]+/);

  // run folders: resolved config, label map, random base, PEFT adapter, reports
  const lora = join(dir, "runs", "images-lora");
  for (const file of ["run.yaml", "labels.json", "model/model.safetensors", "model/config.json", "adapter/adapter_config.json", "adapter/adapter_model.safetensors",
    "checkpoints/best/weights.safetensors", "metrics.jsonl", "eval/val/report.txt", "eval/val/confusion.csv", "eval/val/confusion.png", "eval/val/predictions.jsonl"]) {
    assert.ok(existsSync(join(lora, file)), `${file} in ${lora}`);
  }
  assert.ok(existsSync(join(dir, "runs", "images-sft", "eval", "val", "answers.jsonl")));
  // the heatmaps of the head and the parsed answers draw the matrix of their confusion.csv
  for (const run of ["images-lora", "images-sft"]) {
    const evalDir = join(dir, "runs", run, "eval", "val");
    const labels: string[] = JSON.parse(readFileSync(join(dir, "runs", run, "labels.json"), "utf8"));
    const matrix = readFileSync(join(evalDir, "confusion.csv"), "utf8").trim().split("\n").slice(1).map((line) => line.split(",").slice(1).map(Number));
    const png = decodePng(readFileSync(join(evalDir, "confusion.png")), `${run} confusion.png`);
    const layout = confusionLayout(matrix, labels);
    assert.deepEqual([png.width, png.height, png.channels], [layout.width, layout.height, 3], run);
  }

  // `vlmkit eval` on a run folder reloads base + adapter + head and scores as training did
  const again = await evalRun(lora, {}, () => {});
  assert.equal(again.report!.accuracy, stage("images-lora").evaluation!.report!.accuracy);
  // `vlmkit predict`: top-k sorted, probabilities of a distribution, the true class of a clear image on top
  const firstVal = JSON.parse(readFileSync(join(dir, "data", "val.jsonl"), "utf8").split("\n")[0]);
  const [prediction] = await predictRun(join(dir, "runs", "images-head"), [join(dir, "data", firstVal.image)], { topK: 3 });
  assert.equal(prediction.predictions!.length, 3);
  assert.ok(prediction.predictions!.every((p, i, all) => i === 0 || all[i - 1].probability >= p.probability));
  assert.ok(prediction.predictions!.reduce((s, p) => s + p.probability, 0) <= 1 + 1e-6);
  const [answer] = await predictRun(join(dir, "runs", "images-sft"), [join(dir, "data", firstVal.image)]);
  assert.equal(typeof answer.answer, "string");
  // the video run recorded that it was trained on videos: a folder of frames is one clip, a still image an error
  const videoRun = join(dir, "runs", "video-head");
  assert.deepEqual(JSON.parse(readFileSync(join(videoRun, "media.json"), "utf8")), { images: 0, videos: 1160 });
  const firstClip = join(dir, "data", "video", JSON.parse(readFileSync(join(dir, "data", "video", "val.jsonl"), "utf8").split("\n")[0]).video);
  assert.equal((await predictRun(videoRun, [firstClip])).length, 1);
  await assert.rejects(predictRun(videoRun, [join(dir, "data", firstVal.image)]), /a still image, but this run was trained on videos \(8 frames each\)/);
  // nothing leaks across the whole demo (the cached features and models are freed with their runs)
  assert.ok(liveTensorCount() - liveBefore < 50, `live tensors grew by ${liveTensorCount() - liveBefore}`);
});
