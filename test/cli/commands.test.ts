// The `vlmkit` commands as a user runs them: --help and --version everywhere, exit codes (2 usage, 1 failure,
// 130 interrupted), Ctrl-C saving checkpoints/last and --resume finishing the run, export (LoRA merged into a
// folder that loads with the same outputs, or the adapter alone), model.adapter, max_*_samples, max_length for
// classification, the NaN-guard and parameter-group keys, and generate's sampling options.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { noGrad, tidy, readSafetensors, loadPretrained, type LlavaForConditionalGeneration } from "../../src/index.js";
import { writeTinyLlavaFolder, vocabularyOf } from "../../src/models/llava/tiny_folder.js";
import { writeSyntheticDataset, makeSyntheticImages, SYNTHETIC_QUESTION, syntheticImageLabels } from "../../src/data/synthetic.js";
import { trainRun } from "../../src/runs/train.js";
import { loadRun } from "../../src/runs/use.js";
import type { RunConfig } from "../../src/runs/config.js";

const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
const root = fileURLToPath(new URL("../../..", import.meta.url));
const vlmkit = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: "utf8" });

const dir = mkdtempSync(join(tmpdir(), "vlmkit-commands-"));
const words = vocabularyOf([SYNTHETIC_QUESTION, ...syntheticImageLabels().map((l) => `a ${l}`)]);
const modelConfig = writeTinyLlavaFolder(join(dir, "tiny"), { words, visionHidden: 16, textHidden: 16, heads: 2 });
const data = writeSyntheticDataset(join(dir, "data"), { trainImages: 48, valImages: 12, trainClips: 0, seed: 3 });
const images = makeSyntheticImages(2, { seed: 9 }).map((s) => s.image);
const base = (name: string, extra: RunConfig = {}): RunConfig => ({
  task: "classification", output_dir: join(dir, "runs", name), model: { config: modelConfig, device: "cpu" },
  data: { train: data.trainJsonl, val: data.valJsonl, labels: data.labels, prompt: SYNTHETIC_QUESTION }, head: { hidden_size: 0, cache_dir: null },
  epochs: 2, batch_size: 8, learning_rate: 1e-2, progress: false, seed: 1, ...extra,
});

test("every command answers --help with exit 0 and --version with the package's version; usage errors exit 2, failures 1", () => {
  const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
  for (const command of ["train", "eval", "predict", "generate", "export", "demo", "demo-engine", "info"]) {
    const help = vlmkit(command, "--help");
    assert.equal(help.status, 0, `${command} --help: ${help.stderr}`);
    assert.match(help.stdout, /usage: vlmkit /, command);
    assert.equal(vlmkit(command, "--version").stdout.trim(), `vlmkit ${version}`, command);
  }
  assert.equal(vlmkit("--version").stdout.trim(), `vlmkit ${version}`);
  const unknown = vlmkit("predict", "--run", "x", "--bogus", "1");
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /vlmkit predict: unknown option '--bogus' \(options: --run, --input, --top-k, --prompt\)/);
  assert.equal(vlmkit("generate", "--prompt", "hi").status, 2);
  assert.equal(vlmkit("frobnicate").status, 2);
  const missing = vlmkit("eval", "--run", join(dir, "nothing-here"));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /is not a run folder \(no run\.yaml\)/);
});

test("a second `vlmkit train` on a folder another live process writes exits 1, naming that process", async () => {
  const out = join(dir, "runs", "busy");
  mkdirSync(out, { recursive: true });
  const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
  try {
    writeFileSync(join(out, "run.lock"), JSON.stringify({ pid: holder.pid, host: hostname(), started: "2026-12-03T00:00:00Z", command: "vlmkit train" }));
    const second = vlmkit("train", "--model-config", modelConfig, "--device", "cpu", "--train", data.trainJsonl, "--output", out, "--no-progress");
    assert.equal(second.status, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`is in use by process ${holder.pid} on `));
  } finally {
    const exited = new Promise((done) => holder.once("exit", done));
    holder.kill();
    await exited;
  }
});

test("Ctrl-C during training saves checkpoints/last and exits 130; --resume finishes the run", { timeout: 120_000 }, async () => {
  const out = join(dir, "runs", "interrupted");
  const args = [main, "train", "--model-config", modelConfig, "--device", "cpu", "--train", data.trainJsonl, "--val", data.valJsonl, "--labels", data.labels,
    "--components.language.mode", "lora", "--epochs", "400", "--batch_size", "8", "--no-progress", "--head.cache_dir", "null", "--output", out];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  const code = await new Promise<number | null>((done) => {
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      if (/eval step \d+/.test(stdout) && !child.killed) child.kill("SIGINT");
    });
    child.on("exit", (status) => done(status));
  });
  assert.equal(code, 130, stdout + stderr);
  assert.match(stderr, /interrupted; finishing the step and saving checkpoints\/last/);
  assert.match(stdout, /interrupted at step \d+: checkpoints\/last saved in .*; add --resume to continue/);
  assert.ok(existsSync(join(out, "checkpoints", "last", "weights.safetensors")));
  assert.ok(!existsSync(join(out, "run.lock")), "the lock is released");
  assert.ok(!existsSync(join(out, "eval", "val", "report.json")), "no report for an unfinished run");
  const resumed = vlmkit(...args.slice(1, args.indexOf("--epochs")), "--epochs", "2", "--resume", "--output", out, "--no-progress", "--head.cache_dir", "null", "--batch_size", "8");
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stdout, /resumed from .*checkpoints[/\\]last at step \d+/);
});

test("export: LoRA merged into a folder that loads with the run's outputs; --adapter-only; the head beside it; model.adapter starts a run from it", { timeout: 120_000 }, async () => {
  const summary = await trainRun(base("lora", { components: { language: { mode: "lora", r: 4, target_modules: ["q_proj", "v_proj"] } } }), () => {});
  const merged = join(dir, "exported", "merged");
  const result = vlmkit("export", "--run", summary.runDir, "--output", merged);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /exported the model with 4 LoRA layer\(s\) merged to .*, with head\.safetensors and labels\.json/);
  for (const file of ["config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "head.safetensors", "labels.json"]) assert.ok(existsSync(join(merged, file)), file);
  const weights = readSafetensors(join(merged, "model.safetensors"));
  assert.ok(![...weights.keys()].some((k) => k.includes("lora_")), "no LoRA tensors in the merged weights");
  for (const t of weights.values()) t.dispose();
  // the merged model gives the adapted model's logits
  const run = await loadRun(summary.runDir);
  const loaded = await loadPretrained<LlavaForConditionalGeneration>(merged);
  try {
    noGrad(() =>
      tidy(() => {
        const inputs = run.vlm.encodePrompts([{ images: [images[0]], question: SYNTHETIC_QUESTION }]);
        const a = run.vlm.forward(inputs).logits!.flatten().toArray() as number[];
        const b = loaded.forward(inputs).logits.flatten().toArray() as number[];
        assert.ok(Math.max(...a.map((v, i) => Math.abs(v - b[i]))) < 1e-4);
      }),
    );
  } finally {
    loaded.dispose();
    run.dispose();
  }
  assert.equal(vlmkit("export", "--run", summary.runDir, "--output", merged).status, 1, "a non-empty folder is refused");
  const adapterDir = join(dir, "exported", "adapter");
  assert.equal(vlmkit("export", "--run", summary.runDir, "--output", adapterDir, "--adapter-only").status, 0);
  assert.ok(existsSync(join(adapterDir, "adapter_config.json")) && existsSync(join(adapterDir, "adapter_model.safetensors")));

  // a frozen run on the same base, starting from that adapter, sees the adapted model
  const lines: string[] = [];
  const withAdapter = await trainRun(base("from-adapter", { model: { path: join(summary.runDir, "model"), adapter: adapterDir, device: "cpu" } }), (line) => lines.push(line));
  assert.match(lines.join("\n"), /adapter: .*exported[/\\]adapter \(4 LoRA layer\(s\)\)/);
  const a = await loadRun(summary.runDir);
  const b = await loadRun(withAdapter.runDir);
  try {
    noGrad(() =>
      tidy(() => {
        const inputs = a.vlm.encodePrompts([{ images: [images[1]], question: SYNTHETIC_QUESTION }]);
        assert.deepEqual(b.vlm.hiddenStates(inputs, -1).flatten().toArray(), a.vlm.hiddenStates(inputs, -1).flatten().toArray());
      }),
    );
  } finally {
    a.dispose();
    b.dispose();
  }
});

test("max_train_samples / max_eval_samples, max_length for classification, nan_guard and default_param_groups keys", { timeout: 120_000 }, async () => {
  const lines: string[] = [];
  const quick = await trainRun(base("quick", { data: { ...base("x").data, max_train_samples: 5, max_eval_samples: 3 } }), (line) => lines.push(line));
  assert.match(lines.join("\n"), /data: 5 training and 3 validation records/);
  assert.equal(quick.evaluation!.report!.total, 3);
  // 16 image tokens + the question do not fit in 12 tokens: an error naming the sample and the key, not a silent cut
  await assert.rejects(trainRun(base("short", { data: { ...base("x").data, max_length: 12 } }), () => {}), /train\.jsonl:\d+: the prompt is \d+ tokens \(1 image\(s\) and the question\), over data\.max_length 12/);
  // every trainable parameter must be in a listed group when default_param_groups is false
  await assert.rejects(
    trainRun(base("groups", { default_param_groups: false, param_groups: [{ name: "bias", match: ".*bias$" }], overwrite: true }), () => {}),
    /head\.out_proj\.weight/,
  );
  const guarded = await trainRun(base("guarded", { nan_guard: { max_consecutive: 2, lr_factor: 0.25 } }), () => {});
  const options = JSON.parse(readFileSync(join(guarded.runDir, "train_options.json"), "utf8"));
  assert.deepEqual(options.nanGuard, { maxConsecutive: 2, lrFactor: 0.25 });
});

test("generate: sampling options, reproducible with a seed", () => {
  const image = join(data.dir, JSON.parse(readFileSync(data.valJsonl, "utf8").split("\n")[0]).image);
  const args = ["generate", "--model-config", modelConfig, "--device", "cpu", "--image", image, "--prompt", SYNTHETIC_QUESTION, "--max-new-tokens", "6", "--do-sample", "--temperature", "1.5", "--top-k", "0", "--top-p", "0.95", "--seed", "4"];
  const first = vlmkit(...args);
  assert.equal(first.status, 0, first.stderr);
  assert.equal(vlmkit(...args).stdout, first.stdout);
  const bad = vlmkit(...args.slice(0, -2), "--top-p", "0", "--seed", "4");
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /top_p must be in \(0, 1\]/);
});
