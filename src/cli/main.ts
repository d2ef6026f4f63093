#!/usr/bin/env node
// The `vlmkit` command. Each subcommand parses its flags, calls the library (src/runs/) and prints.
import { ConfigError, booleanFlagNames, configFromFlags, describeSchema, mergeConfigs, normaliseFlagName, readRunConfig, splitArgs, type RunConfig } from "../runs/config.js";

const usage = `usage: vlmkit <command> [options]

commands:
  demo         generate a synthetic dataset, train a tiny LLaVA-shaped model (head, LoRA, generation) on it and print the reports
  train        train from a run file and/or flags:  vlmkit train --config run.yaml [--lr 1e-4] [--components.language.mode lora]
  eval         score a finished run:                vlmkit eval --run runs/x [--data test.jsonl] [--cache-dir <folder> | null]
  predict      top-k classes (or the answer) per image, or per video on a video run:  vlmkit predict --run runs/x image.png photos/ [--top-k 3]
  generate     the model's answer to a prompt:       vlmkit generate (--run runs/x | --model <folder> | --model-config <config.json>) --image a.png --prompt "..."
  demo-engine  fit a small MLP on generated 2-D spirals (the tensor engine alone)
  info         show the libtorch build vlmkit runs on and the CUDA devices it sees

\`vlmkit train --help\` lists every run-file key; each is also a flag (--data.train x.jsonl, --epochs 3).`;

/** Flags of one command, each with its kind; anything else is an error naming the flag. */
function commandFlags(flags: [string, string][], known: Record<string, "string" | "number" | "boolean" | "list">, command: string): Record<string, string | number | boolean | string[]> {
  const out: Record<string, string | number | boolean | string[]> = {};
  for (const [raw, value] of flags) {
    const name = normaliseFlagName(raw);
    const kind = known[name];
    if (!kind) throw new Error(`vlmkit ${command}: unknown option '--${raw}' (options: ${Object.keys(known).map((k) => `--${k.replace(/_/g, "-")}`).join(", ")})`);
    if (kind === "number") {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new Error(`vlmkit ${command}: --${raw} must be a number, got '${value}'`);
      out[name] = n;
    } else if (kind === "boolean") {
      out[name] = value !== "false";
    } else if (kind === "list") {
      out[name] = [...((out[name] as string[] | undefined) ?? []), value];
    } else {
      out[name] = value;
    }
  }
  return out;
}

async function train(argv: string[]): Promise<number> {
  const booleans = booleanFlagNames();
  booleans.add("help");
  const { positional, flags } = splitArgs(argv, booleans);
  if (flags.some(([name]) => name === "help" || name === "h")) {
    console.log(`usage: vlmkit train --config run.yaml [--key value ...]\n\nkeys of run.yaml (each also a flag; later flags win over the file):\n${describeSchema().join("\n")}\n\nshort flags: --lr, --model <folder>, --model-config <config.json>, --train, --val, --labels, --skip-bad, --output/-o, --device`);
    return 0;
  }
  if (positional.length > 0) throw new Error(`vlmkit train: unexpected argument '${positional[0]}' (the run file goes after --config)`);
  const configFlags = flags.filter(([name]) => name === "config" || name === "c");
  if (configFlags.length > 1) throw new Error("vlmkit train: give --config once");
  const fromFile: RunConfig = configFlags.length ? readRunConfig(configFlags[0][1]) : {};
  const fromFlags = configFromFlags(flags.filter(([name]) => name !== "config" && name !== "c"));
  const { trainRun } = await import("../runs/index.js");
  const summary = await trainRun(mergeConfigs(fromFile, fromFlags));
  console.log(`run folder: ${summary.runDir}`);
  return 0;
}

async function evaluate(argv: string[]): Promise<number> {
  const { positional, flags } = splitArgs(argv);
  const options = commandFlags(flags, { run: "string", data: "string", split: "string", cache_dir: "string" }, "eval");
  const runDir = (options.run as string | undefined) ?? positional[0];
  if (!runDir) throw new Error("vlmkit eval: give the run folder: vlmkit eval --run runs/x [--data test.jsonl]");
  const { evalRun } = await import("../runs/index.js");
  const cacheDir = options.cache_dir === undefined ? undefined : options.cache_dir === "null" ? null : (options.cache_dir as string);
  const evaluation = await evalRun(runDir, { data: options.data as string | undefined, split: options.split as string | undefined, cacheDir });
  console.log(evaluation.text);
  console.log(JSON.stringify({ split: evaluation.split, ...evaluation.metrics }));
  return 0;
}

async function predict(argv: string[]): Promise<number> {
  const { positional, flags } = splitArgs(argv);
  const options = commandFlags(flags, { run: "string", input: "list", top_k: "number", prompt: "string" }, "predict");
  const inputs = [...((options.input as string[] | undefined) ?? []), ...positional];
  if (!options.run) throw new Error("vlmkit predict: give the run folder: vlmkit predict --run runs/x image.png [photos/ ...] (a video run: clip.mp4 or a folder of frames)");
  const { predictRun } = await import("../runs/index.js");
  const predictions = await predictRun(options.run as string, inputs, { topK: options.top_k as number | undefined, prompt: options.prompt as string | undefined });
  console.log(JSON.stringify(predictions.length === 1 ? predictions[0] : predictions, null, 2));
  return 0;
}

async function generateCommand(argv: string[]): Promise<number> {
  const { positional, flags } = splitArgs(argv);
  const options = commandFlags(
    flags,
    { run: "string", model: "string", model_config: "string", image: "list", video: "list", prompt: "string", max_new_tokens: "number", num_frames: "number", seed: "number" },
    "generate",
  );
  const sources = ["run", "model", "model_config"].filter((k) => options[k] !== undefined);
  if (sources.length !== 1) throw new Error("vlmkit generate: give one of --run <run folder>, --model <model folder>, --model-config <config.json>");
  const inputs = [...((options.image as string[] | undefined) ?? []), ...((options.video as string[] | undefined) ?? []), ...positional];
  if (inputs.length === 0) throw new Error("vlmkit generate: give an image (--image a.png) or a video (--video clip.mp4)");
  if (!options.prompt) throw new Error('vlmkit generate: give the question with --prompt "What is in the image?"');
  const { generateText } = await import("../runs/index.js");
  const text = await generateText(
    { run: options.run as string | undefined, model: options.model as string | undefined, modelConfig: options.model_config as string | undefined },
    inputs,
    options.prompt as string,
    { maxNewTokens: options.max_new_tokens as number | undefined, numFrames: options.num_frames as number | undefined, seed: options.seed as number | undefined },
  );
  console.log(text);
  return 0;
}

async function demo(argv: string[]): Promise<number> {
  const { positional, flags } = splitArgs(argv, new Set(["quick"]));
  const options = commandFlags(flags, { dir: "string", quick: "boolean", floor: "number" }, "demo");
  const { runDemo } = await import("../runs/demo.js");
  const result = await runDemo({ dir: (options.dir as string | undefined) ?? positional[0], quick: options.quick as boolean | undefined, floor: options.floor as number | undefined });
  return result.passed ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "train":
      return train(rest);
    case "eval":
      return evaluate(rest);
    case "predict":
      return predict(rest);
    case "generate":
      return generateCommand(rest);
    case "demo":
      return demo(rest);
    case "demo-engine": {
      const { runEngineDemo } = await import("./demo_engine.js");
      const { accuracy } = runEngineDemo();
      return accuracy >= 0.9 ? 0 : 1;
    }
    case "info": {
      const { buildInfo, cuda } = await import("../index.js");
      const info = buildInfo();
      console.log(`libtorch ${info.torch}, CUDA build: ${info.cudaBuild}, fused attention: ${info.flashAttention}`);
      const count = cuda.deviceCount();
      for (let i = 0; i < count; i++) console.log(`cuda:${i} ${cuda.deviceName(i)}`);
      return 0;
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(usage);
      return 0;
    default:
      console.error(`vlmkit: unknown command '${command}'\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    // configuration mistakes are the user's to fix: the message says what; a stack would only hide it
    console.error(`vlmkit: ${error.message}`);
    if (process.env.VLMKIT_DEBUG && !(error instanceof ConfigError)) console.error(error.stack);
    process.exit(1);
  },
);
