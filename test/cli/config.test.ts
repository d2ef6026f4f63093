// The run configuration: errors that name the key (unknown key with a suggestion, wrong type with the expected
// one, file and line), flags over the same keys (aliases, booleans, lists, dotted paths), and flags winning over
// the file; the `vlmkit train` process reports them and exits 1.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  ConfigError, booleanFlagNames, configFromFlags, mergeConfigs, readRunConfig, runConfigToYaml, splitArgs, suggestKey, validateRunConfig,
} from "../../src/runs/config.js";
import { resolveRunConfig } from "../../src/runs/resolve.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-config-"));
function runFile(text: string, name = "run.yaml"): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${error}`);
    return error.problems;
  }
  assert.fail("expected a ConfigError");
}

test("an unknown key names the file, the line and the closest known key", () => {
  const path = runFile("task: classification\nlerning_rate: 1e-4\n");
  assert.deepEqual(problems(() => readRunConfig(path)), [`unknown key 'lerning_rate' in ${path}:2 (did you mean 'learning_rate'?)`]);
  const nested = runFile("components:\n  language:\n    moed: lora\n", "nested.yaml");
  assert.deepEqual(problems(() => readRunConfig(nested)), [`unknown key 'moed' (in 'components.language') in ${nested}:3 (did you mean 'mode'?)`]);
  const far = runFile("zzzzzz: 1\n", "far.yaml");
  assert.match(problems(() => readRunConfig(far))[0], /unknown key 'zzzzzz' in .*far\.yaml:1; known keys: task, output_dir, model/);
});

test("run files are full YAML: anchors and merge keys, block scalars, multi-line flow lists; errors after them keep their line", () => {
  const text = [
    "task: classification",            // 1
    "data:",                           // 2
    "  train: t.jsonl",                // 3
    "  prompt: >-",                    // 4
    "    Which shape is in",           // 5
    "    the image?",                  // 6
    "components:",                     // 7
    "  vision: &adapt",                // 8
    "    mode: lora",                  // 9
    "    r: 4",                        // 10
    "    target_modules: [",           // 11
    "      q_proj,",                   // 12
    "      v_proj,",                   // 13
    "    ]",                           // 14
    "  language:",                     // 15
    "    <<: *adapt",                  // 16
    "    r: 16",                       // 17
    "  projector: *adapt",             // 18
    "head:",                           // 19
    "  pooling: mean",                 // 20
  ];
  const config = readRunConfig(runFile(text.join("\n") + "\n", "full.yaml"));
  const adapt = { mode: "lora", r: 4, target_modules: ["q_proj", "v_proj"] };
  assert.deepEqual(config, {
    task: "classification",
    data: { train: "t.jsonl", prompt: "Which shape is in the image?" },
    components: { vision: adapt, language: { ...adapt, r: 16 }, projector: adapt },
    head: { pooling: "mean" },
  });
  // an unknown key after those constructs is named at its own line
  const typo = runFile([...text, "  poolin: last", "epochs: 1"].join("\n"), "typo.yaml");
  assert.deepEqual(problems(() => readRunConfig(typo)), [`unknown key 'poolin' (in 'head') in ${typo}:21 (did you mean 'pooling'?)`]);
  // a wrong value reached through an alias is named where its text is, under each key that uses it
  const shared = runFile(text.join("\n").replace("    r: 4", "    r: 0"), "shared.yaml");
  assert.deepEqual(problems(() => readRunConfig(shared)), [
    `${shared}:10: 'components.vision.r' must be an integer >= 1, got 0`,
    `${shared}:10: 'components.projector.r' must be an integer >= 1, got 0`,
  ]);
  // a syntax error names the line and column, a duplicate key both lines
  assert.throws(() => readRunConfig(runFile("data:\n  train: [a,\n", "open.yaml")), /open\.yaml:3:1: /);
  assert.throws(() => readRunConfig(runFile("epochs: 1\nseed: 2\nepochs: 3\n", "dup.yaml")), /dup\.yaml:3: duplicate key 'epochs' \(first at line 1\)/);
});

test("a wrong type names the key and the expected type", () => {
  const path = runFile("epochs: three\nbatch_size: 0\ncomponents:\n  language:\n    mode: adapter\nmodel: cpu\nhead:\n  dropout: 1.5\n", "types.yaml");
  assert.deepEqual(problems(() => readRunConfig(path)), [
    `${path}:1: 'epochs' must be an integer >= 1, got "three"`,
    `${path}:2: 'batch_size' must be an integer >= 1, got 0`,
    `${path}:5: 'components.language.mode' must be one of frozen, lora, full, got "adapter"`,
    `${path}:6: 'model' must be a map of keys (path, config, dtype, device, adapter), got "cpu"`,
    `${path}:8: 'head.dropout' must be a number in [0, 1), got 1.5`,
  ]);
});

test("suggestions only for near misses", () => {
  assert.equal(suggestKey("lerning_rate", ["learning_rate", "epochs"]), "learning_rate");
  assert.equal(suggestKey("epoch", ["learning_rate", "epochs"]), "epochs");
  assert.equal(suggestKey("colour", ["learning_rate", "epochs"]), null);
});

test("flags set the same keys: dotted paths, aliases, kebab case, booleans, lists", () => {
  const { positional, flags } = splitArgs(
    ["--lr", "1e-4", "--components.language.mode", "lora", "--components.language.target-modules", "q_proj,v_proj", "--skip-bad",
      "--data.labels=a,b", "--model-config", "m/config.json", "--max_steps", "null", "--eval-every", "50", "--no-progress", "extra"],
    booleanFlagNames(),
  );
  assert.deepEqual(positional, ["extra"]);
  assert.deepEqual(configFromFlags(flags), {
    learning_rate: 1e-4,
    components: { language: { mode: "lora", target_modules: ["q_proj", "v_proj"] } },
    data: { skip_bad: true, labels: ["a", "b"] },
    model: { config: "m/config.json" },
    max_steps: null,
    eval_every: 50,
    progress: false,
  });
  // a regex stays one string; a labels.json path stays a path
  assert.deepEqual(configFromFlags([["components.vision.target_modules", "layers\\.1\\..*_proj"], ["labels", "data/labels.json"]]), {
    components: { vision: { target_modules: "layers\\.1\\..*_proj" } },
    data: { labels: "data/labels.json" },
  });
});

test("head.cache_dir: a folder, or null for no on-disk feature cache; --cache-dir sets it; the default sits beside the run", () => {
  assert.deepEqual(configFromFlags([["cache-dir", "/tmp/features"]]), { head: { cache_dir: "/tmp/features" } });
  assert.deepEqual(configFromFlags([["head.cache_dir", "null"]]), { head: { cache_dir: null } });
  const path = runFile("head:\n  cache_dir: [a, b]\n", "cache.yaml");
  assert.deepEqual(problems(() => readRunConfig(path)), [`${path}:2: 'head.cache_dir' must be a string or null, got a list`]);
  const base = { data: { train: "t.jsonl" }, model: { path: "m" } };
  // the resolved configuration holds absolute paths, so a run folder works from any working directory
  const resolved = resolveRunConfig({ ...base, output_dir: "runs/x", data: { train: "t.jsonl", labels: "l.json" } });
  assert.equal(resolved.head?.cache_dir, resolve("runs", ".vlmkit-cache", "features"));
  assert.deepEqual([resolved.output_dir, resolved.data?.train, resolved.data?.labels, resolved.model?.path], [resolve("runs/x"), resolve("t.jsonl"), resolve("l.json"), resolve("m")]);
  assert.deepEqual(resolveRunConfig({ ...base, output_dir: "/abs/x", data: { train: "t.jsonl", labels: ["a", "b"] } }).data?.labels, ["a", "b"]);
  assert.equal(resolveRunConfig({ ...base, output_dir: "runs/x", head: { cache_dir: null } }).head?.cache_dir, null);
});

test("flag errors name the flag and suggest the key", () => {
  assert.deepEqual(problems(() => configFromFlags([["lerning-rate", "1"], ["components.langauge.mode", "lora"], ["components", "x"], ["epochs.x", "1"]])), [
    "unknown option '--lerning-rate' (did you mean '--learning_rate'?)",
    "unknown option '--components.langauge.mode' (did you mean '--components.language.mode'?)",
    "option '--components' names the section 'components'; give one of its keys: --components.vision, --components.projector, --components.language",
    "unknown option '--epochs.x': 'epochs' has no keys below it",
  ]);
  assert.deepEqual(problems(() => configFromFlags([["epochs", "2.5"], ["lr", "fast"]])), [
    "the command line: 'epochs' must be an integer >= 1, got 2.5",
    "the command line: 'learning_rate' must be a number >= 0, got \"fast\"",
  ]);
});

test("flags win over the file key by key; the resolved config round-trips through run.yaml", () => {
  const path = runFile("task: classification\nlearning_rate: 0.01\ncomponents:\n  language: {mode: lora, r: 4}\ndata:\n  train: t.jsonl\n", "merge.yaml");
  const merged = mergeConfigs(readRunConfig(path), configFromFlags([["lr", "0.001"], ["components.language.r", "16"], ["output", "runs/x"], ["model", "m"]]));
  assert.deepEqual(merged, {
    task: "classification",
    learning_rate: 0.001,
    components: { language: { mode: "lora", r: 16 } },
    data: { train: "t.jsonl" },
    output_dir: "runs/x",
    model: { path: "m" },
  });
  const resolved = resolveRunConfig(merged);
  assert.equal(resolved.batch_size, 8);
  assert.equal(resolved.best_metric, "accuracy");
  assert.deepEqual(resolved.components?.vision, { mode: "frozen" });
  const again = runFile(runConfigToYaml(resolved, "resolved"), "again.yaml");
  assert.deepEqual(readRunConfig(again), resolved);
  assert.deepEqual(validateRunConfig(null), {});
});

test("an incomplete run says what is missing and the flag that sets it", () => {
  assert.throws(() => resolveRunConfig({ task: "generation" }), (error: Error) =>
    /data\.train is missing.*--train <path>/.test(error.message) && /output_dir is missing/.test(error.message) &&
    /model\.path \(--model <folder>\)/.test(error.message) && /every component frozen trains nothing/.test(error.message));
});

test("`vlmkit train` prints the configuration errors: exit 1 for a bad run file, 2 for a bad flag", () => {
  const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
  const path = runFile("lerning_rate: 1e-4\nepochs: 0\n", "cli.yaml");
  const result = spawnSync(process.execPath, [main, "train", "--config", path, "--batch-sise", "4"], { encoding: "utf8" });
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stderr, /unknown key 'lerning_rate' in .*cli\.yaml:1 \(did you mean 'learning_rate'\?\)/);
  // a mistyped flag is a usage error: exit code 2
  const flagsOnly = spawnSync(process.execPath, [main, "train", "--batch-sise", "4"], { encoding: "utf8" });
  assert.equal(flagsOnly.status, 2);
  assert.match(flagsOnly.stderr, /unknown option '--batch-sise' \(did you mean '--batch_size'\?\)/);
  const help = spawnSync(process.execPath, [main, "train", "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--components\.language\.target_modules/);
});

test("the README's run.yaml is a valid run file", () => {
  const readme = readFileSync(fileURLToPath(new URL("../../../README.md", import.meta.url)), "utf8");
  const block = /```yaml\n([\s\S]*?)```/.exec(readme);
  assert.ok(block, "README has a yaml block");
  const config = readRunConfig(runFile(block[1], "readme.yaml"));
  assert.equal(config.components?.language?.mode, "lora");
  assert.equal(config.learning_rate, 2e-4);
  assert.equal(resolveRunConfig(config).head?.pooling, "last");
});
