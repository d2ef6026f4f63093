// Features of a frozen backbone kept between runs: a second `train` or `eval` on the same model, processor, prompt
// and data computes no feature and trains the same head bit for bit; changing the weights, a processor setting,
// the prompt, the hidden layer or pooling, or a data file's contents computes them again; a truncated cache file
// is recomputed with a warning; what comes from disk equals what the backbone computes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, readdirSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildFromConfig, liveTensorCount, manualSeed, readSafetensors, tidy, writeSafetensors, type LlavaForConditionalGeneration, type Tensor } from "../../src/index.js";
import { writeTinyLlavaFolder, vocabularyOf } from "../../src/models/llava/tiny_folder.js";
import { writeSyntheticDataset, SYNTHETIC_QUESTION, syntheticImageLabels, makeSyntheticImages } from "../../src/data/synthetic.js";
import { readJsonlRecords } from "../../src/data/records.js";
import { loadImage } from "../../src/data/image.js";
import { encodePng } from "../../src/data/image.js";
import { readMetrics } from "../../src/train/metrics_log.js";
import { loadVlm, saveModelFolder } from "../../src/models/vlm.js";
import { ClassificationTask, openFeatureCache, type ClassificationTaskOptions } from "../../src/tasks/classification.js";
import { SampleSource, type VisualSample } from "../../src/tasks/samples.js";
import { evalRun } from "../../src/runs/use.js";
import { trainRun } from "../../src/runs/train.js";
import type { RunConfig } from "../../src/runs/config.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-fcache-cli-"));
const words = vocabularyOf([SYNTHETIC_QUESTION, "what colour is it ?", ...syntheticImageLabels().map((l) => `a ${l}`)]);
const modelConfig = writeTinyLlavaFolder(join(dir, "tiny"), { words, visionHidden: 32, textHidden: 32, heads: 2 });
const modelDir = join(dir, "model");
manualSeed(5);
{
  const model = buildFromConfig<LlavaForConditionalGeneration>(modelConfig);
  saveModelFolder(model, join(dir, "tiny"), modelDir);
  model.dispose();
}
const files = writeSyntheticDataset(join(dir, "data"), { trainImages: 12, valImages: 4, trainClips: 0, seed: 1 });

function bytesOf(t: Tensor): Buffer {
  const data = t.data();
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

test("a second train on the same model and data computes no feature and trains the same head bit for bit; eval reuses them too", { timeout: 120_000 }, async () => {
  const config = (name: string, model: RunConfig["model"]): RunConfig => ({
    task: "classification", output_dir: join(dir, "runs", name), model: { ...model, device: "cpu" },
    data: { train: files.trainJsonl, val: files.valJsonl, labels: files.labels, prompt: SYNTHETIC_QUESTION },
    head: { pooling: "mean", hidden_size: 16 }, epochs: 3, batch_size: 4, learning_rate: 1e-2, seed: 3, progress: false,
  });
  for (const [a, b, model] of [["a", "b", { path: modelDir }], ["random-a", "random-b", { config: modelConfig }]] as const) {
    const logs: Record<string, string[]> = { [a]: [], [b]: [] };
    const first = await trainRun(config(a, model), (line) => logs[a].push(line));
    const second = await trainRun(config(b, model), (line) => logs[b].push(line));
    assert.equal(first.featureComputations, 16, logs[a].join("\n"));
    assert.equal(second.featureComputations, 0, logs[b].join("\n"));
    assert.match(logs[a].join("\n"), /features: 0 loaded from the cache, 16 computed through the frozen backbone/);
    assert.match(logs[b].join("\n"), /features: 16 loaded from the cache, 0 computed through the frozen backbone.*\.vlmkit-cache[/\\]features/);
    // the same head, bit for bit, and the same metrics
    for (const checkpoint of ["last", "best"]) {
      const x = readSafetensors(join(first.runDir, "checkpoints", checkpoint, "weights.safetensors"));
      const y = readSafetensors(join(second.runDir, "checkpoints", checkpoint, "weights.safetensors"));
      assert.deepEqual([...x.keys()], [...y.keys()]);
      for (const [name, t] of x) assert.ok(bytesOf(t).equals(bytesOf(y.get(name)!)), `${checkpoint}/${name} differs`);
      for (const t of [...x.values(), ...y.values()]) t.dispose();
    }
    const metrics = (runDir: string) => readMetrics(join(runDir, "metrics.jsonl")).map(({ samples_per_s: _, elapsed_s: __, ...rest }) => rest);
    assert.deepEqual(metrics(second.runDir), metrics(first.runDir));
    // `vlmkit eval` of the run loads the validation features from the cache and scores as training did
    const evalLog: string[] = [];
    const evaluation = await evalRun(first.runDir, {}, (line) => evalLog.push(line));
    assert.match(evalLog.join("\n"), /features: 4 loaded from the cache, 0 computed/);
    assert.deepEqual(evaluation.metrics, first.evaluation!.metrics);
    // and with the on-disk cache turned off it computes them
    const uncached: string[] = [];
    await evalRun(first.runDir, { cacheDir: null }, (line) => uncached.push(line));
    assert.match(uncached.join("\n"), /features: 0 loaded from the cache, 4 computed/);
  }
  const yaml = readFileSync(join(dir, "runs", "a", "run.yaml"), "utf8");
  assert.match(yaml, /cache_dir: .*\.vlmkit-cache\/features/);
});

// ---- one task at a time: what invalidates ----

const records = readJsonlRecords(files.trainJsonl, { labels: JSON.parse(readFileSync(files.labels, "utf8")) }).records.slice(0, 6);

function samples(paths = records.map((r) => r.images![0])): SampleSource {
  return new SampleSource(paths.length, (i) => ({ key: `s${i}`, get images() { return [loadImage(paths[i])]; }, labelIndex: 0, media: [paths[i]] }) as VisualSample);
}

const BASE: Pick<ClassificationTaskOptions, "question" | "pooling" | "hiddenLayer"> = { question: SYNTHETIC_QUESTION, pooling: "mean", hiddenLayer: -1 };
const cacheRoot = join(dir, "task-cache");

interface Warmed {
  loaded: number;
  computed: number;
  featureComputations: number;
  features: number[][];
}

/** Warms a fresh task (store on unless `store` is false) over the samples and returns its counts and raw features. */
async function warm(folder: string, options: Partial<typeof BASE> = {}, source = samples(), { store = true, log = (_: string) => {} } = {}): Promise<Warmed> {
  const vlm = await loadVlm({ path: folder }, { device: "cpu" });
  const liveBefore = liveTensorCount();
  try {
    const settings = { ...BASE, ...options };
    const task = new ClassificationTask(vlm, {
      labels: ["a", "b"], ...settings, headHiddenSize: 0, frozenBackbone: true, cacheFeatures: true, normalizeFeatures: false, topK: 1,
      store: store ? openFeatureCache(vlm, settings, { dir: cacheRoot, weightsFolder: folder, numFrames: 8, log }) : null,
    });
    const counts = task.warmCache(source, 4);
    const all = source.batch(Array.from({ length: source.length }, (_, i) => i)).samples;
    const features = tidy(() => task.features(all).toArray() as number[][]);
    const result = { ...counts, featureComputations: task.featureComputations, features };
    task.dispose();
    // loading, saving and the cache's tensors leak nothing (the model's first forward pass keeps one tensor of its own)
    const grown = liveTensorCount() - liveBefore;
    assert.ok(grown <= (counts.computed > 0 ? 1 : 0), `live tensors grew by ${grown} (${counts.loaded} loaded, ${counts.computed} computed)`);
    return result;
  } finally {
    vlm.dispose();
  }
}

function maxDifference(a: number[][], b: number[][]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i][j]))));
}

test("cached features equal the backbone's; each input of the key invalidates them; a copy of the model folder does not", { timeout: 120_000 }, async () => {
  const fresh = await warm(modelDir, {}, samples(), { store: false });
  assert.equal(fresh.featureComputations, 6);
  const first = await warm(modelDir);
  assert.deepEqual([first.loaded, first.computed, first.featureComputations], [0, 6, 6]);
  const again = await warm(modelDir);
  assert.deepEqual([again.loaded, again.computed, again.featureComputations], [6, 0, 0]);
  // from disk = computed now, within 1e-6 (in fact exactly: float32 stored raw)
  assert.ok(maxDifference(again.features, fresh.features) <= 1e-6);
  assert.deepEqual(again.features, fresh.features);

  const recomputes = async (what: string, run: () => Promise<Warmed>) => {
    const result = await run();
    assert.equal(result.computed, 6, `${what}: ${result.loaded} loaded`);
    assert.equal(result.featureComputations, 6, what);
    return result;
  };
  const question = await recomputes("question", () => warm(modelDir, { question: "what colour is it ?" }));
  assert.ok(maxDifference(question.features, fresh.features) > 1e-6, "another question, other features");
  await recomputes("pooling", () => warm(modelDir, { pooling: "last" }));
  await recomputes("hidden layer", () => warm(modelDir, { hiddenLayer: 1 }));

  // a byte-identical copy elsewhere is the same model: loaded
  const copy = join(dir, "model-copy");
  cpSync(modelDir, copy, { recursive: true });
  assert.equal((await warm(copy)).computed, 0);
  // a processor setting: the image mean
  const processorFile = join(copy, "processor_config.json");
  const processor = JSON.parse(readFileSync(processorFile, "utf8"));
  processor.image_processor.image_mean = [0.4, 0.5, 0.5];
  writeFileSync(processorFile, JSON.stringify(processor, null, 2));
  const mean = await recomputes("image mean", () => warm(copy));
  assert.ok(maxDifference(mean.features, fresh.features) > 1e-6);
  // a weight file: one tensor of the copy changed
  const copy2 = join(dir, "model-copy2");
  cpSync(modelDir, copy2, { recursive: true });
  const weightsFile = join(copy2, "model.safetensors");
  const weights = readSafetensors(weightsFile);
  const name = "model.language_model.layers.0.mlp.down_proj.weight";
  const changed = weights.get(name)!.mul(1.5);
  weights.get(name)!.dispose();
  weights.set(name, changed);
  writeSafetensors(weightsFile, weights, { format: "pt" });
  for (const t of weights.values()) t.dispose();
  await recomputes("weights", () => warm(copy2));
  // the base is untouched by all this
  assert.equal((await warm(modelDir)).computed, 0);

  // a data file's contents: only that sample is computed again
  const dataCopy = join(dir, "data-copy");
  cpSync(join(dir, "data"), dataCopy, { recursive: true });
  const paths = records.map((r) => r.images![0].replace(join(dir, "data"), dataCopy));
  const moved = await warm(modelDir, {}, samples(paths));
  assert.deepEqual([moved.loaded, moved.computed], [6, 0], "the same bytes elsewhere are the same samples");
  // touched without a change: still the same contents
  utimesSync(paths[1], new Date(), new Date(Date.now() + 5000));
  assert.equal((await warm(modelDir, {}, samples(paths))).computed, 0);
  writeFileSync(paths[2], encodePng(makeSyntheticImages(1, { size: 32, seed: 99 })[0].image));
  const edited = await warm(modelDir, {}, samples(paths));
  assert.deepEqual([edited.loaded, edited.computed, edited.featureComputations], [5, 1, 1]);
  assert.ok(maxDifference([edited.features[2]], [fresh.features[2]]) > 1e-6);
  assert.deepEqual([edited.features[0], edited.features[3]], [fresh.features[0], fresh.features[3]]);
});

test("a truncated cache file is computed again with a warning, then cached again", { timeout: 60_000 }, async () => {
  const root = join(dir, "truncate-model");
  cpSync(modelDir, root, { recursive: true });
  const fresh = await warm(root, { pooling: "last" }, samples(), { store: false });
  await warm(root, { pooling: "last" });
  const keyFolders = readdirSync(cacheRoot).map((name) => join(cacheRoot, name)).filter((folder) => !folder.endsWith(".json"));
  const shardsNow = keyFolders.flatMap((folder) => readdirSync(folder).filter((n) => n.endsWith(".safetensors")).map((n) => join(folder, n)));
  for (const shard of shardsNow) truncateSync(shard, 100);
  const warnings: string[] = [];
  const result = await warm(root, { pooling: "last" }, samples(), { log: (line) => warnings.push(line) });
  assert.deepEqual([result.loaded, result.computed, result.featureComputations], [0, 6, 6]);
  assert.ok(warnings.some((line) => /warning: feature cache .* is unreadable .*truncated.*computed again/.test(line)), warnings.join("\n"));
  assert.deepEqual(result.features, fresh.features);
  const healed = await warm(root, { pooling: "last" });
  assert.deepEqual([healed.loaded, healed.computed], [6, 0]);
});
