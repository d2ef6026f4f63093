#!/usr/bin/env node
// The `vlmkit` command. Each subcommand parses its flags, calls the library (src/runs/) and prints.
// Exit codes: 0 done, 1 the work failed, 2 the command line was wrong, 130 interrupted (Ctrl-C).
import { readFileSync } from "node:fs";
import { ConfigError, booleanFlagNames, configFromFlags, describeSchema, mergeConfigs, normaliseFlagName, readRunConfig, splitArgs, type RunConfig } from "../runs/config.js";

/** A mistake in the command line: exit code 2, and the command's usage is worth reading. */
class UsageError extends Error {}

const usage = `usage: vlmkit <command> [options]

commands:
  demo         generate a synthetic dataset, train a tiny LLaVA-shaped model (head, LoRA, generation) on it and print the reports
  train        train from a run file and/or flags:  vlmkit train --config run.yaml [--lr 1e-4] [--components.language.mode lora]
  eval         score a finished run:                vlmkit eval --run runs/x [--data test.jsonl] [--cache-dir <folder> | null]
  predict      top-k classes (or the answer) per image, or per video on a video run:  vlmkit predict --run runs/x image.png photos/ [--top-k 3]
  generate     the model's answer to a prompt:       vlmkit generate (--run runs/x | --model <folder> | --model-config <config.json>) --image a.png --prompt "..."
  export       a run's model with LoRA merged, as a Hugging Face folder (or --adapter-only):  vlmkit export --run runs/x --output merged/
  demo-engine  fit a small MLP on generated 2-D spirals (the tensor engine alone)
  info         show the libtorch build vlmkit runs on and the CUDA devices it sees

\`vlmkit <command> --help\` describes a command; \`vlmkit train --help\` lists every run-file key (each is also a flag).
\`vlmkit --version\` prints the version.`;

type FlagKind = "string" | "number" | "boolean" | "list";

interface CommandSpec {
  usage: string;
  flags: Record<string, FlagKind>;
  /** What each flag means, for --help. */
  help: Record<string, string>;
}

const COMMANDS: Record<string, CommandSpec> = {
  eval: {
    usage: "vlmkit eval --run runs/x [--data test.jsonl] [--split name] [--cache-dir <folder> | null]",
    flags: { run: "string", data: "string", split: "string", cache_dir: "string" },
    help: {
      run: "the run folder (output_dir of vlmkit train)",
      data: "records to score (default: the run's data.test, else data.val, else the split it held out)",
      split: "the report's folder name under eval/ (default: the data file's name, or test / val)",
      cache_dir: "the feature cache to read and add to (null: none; default: the run's head.cache_dir)",
    },
  },
  predict: {
    usage: "vlmkit predict --run runs/x image.png [clip.mp4 ...] [--top-k 3] [--prompt \"...\"]",
    flags: { run: "string", input: "list", top_k: "number", prompt: "string" },
    help: {
      run: "the run folder",
      input: "an image or a video (a video file or a folder of frames); also given as plain arguments",
      top_k: "classes per input for a classification run (default: the run's eval.top_k)",
      prompt: "the question for a generation run (default: the run's data.prompt)",
    },
  },
  generate: {
    usage: "vlmkit generate (--run runs/x | --model <folder> | --model-config <config.json>) --image a.png --prompt \"...\"",
    flags: {
      run: "string", model: "string", model_config: "string", image: "list", video: "list", prompt: "string", max_new_tokens: "number", num_frames: "number",
      seed: "number", device: "string", do_sample: "boolean", temperature: "number", top_k: "number", top_p: "number",
    },
    help: {
      run: "a run folder (its model, adapters and weights)",
      model: "a Hugging Face model folder",
      model_config: "a config.json: random weights (seeded by --seed)",
      image: "an image file (repeat for several)",
      video: "a video file or a folder of frames",
      prompt: "the question",
      max_new_tokens: "tokens to generate at most (default 32)",
      num_frames: "frames sampled from a video (default 8)",
      seed: "seeds random weights and sampling",
      device: "cpu, cuda or cuda:N (default: cuda when available)",
      do_sample: "sample instead of greedy decoding",
      temperature: "sampling temperature (default 1)",
      top_k: "sample among the k most likely tokens (default 50; 0 = off)",
      top_p: "sample within the top-p probability mass (default 1 = off)",
    },
  },
  export: {
    usage: "vlmkit export --run runs/x --output <new folder> [--adapter-only]",
    flags: { run: "string", output: "string", adapter_only: "boolean" },
    help: {
      run: "the run folder",
      output: "the folder to write (must be new or empty)",
      adapter_only: "write the PEFT adapter alone instead of the merged model",
    },
  },
  demo: {
    usage: "vlmkit demo [--dir vlmkit-demo] [--quick] [--floor 0.9]",
    flags: { dir: "string", quick: "boolean", floor: "number" },
    help: { dir: "where data, model and runs go (default ./vlmkit-demo)", quick: "less data and fewer epochs", floor: "the top-1 the frozen-feature head must reach (default 0.9)" },
  },
  "demo-engine": { usage: "vlmkit demo-engine", flags: {}, help: {} },
  info: { usage: "vlmkit info", flags: {}, help: {} },
};

function commandHelp(name: string): string {
  const spec = COMMANDS[name];
  const lines = Object.keys(spec.flags).map((flag) => `  --${flag.replace(/_/g, "-").padEnd(18)} ${spec.help[flag] ?? ""}`);
  return `usage: ${spec.usage}${lines.length ? `\n\noptions:\n${lines.join("\n")}` : ""}\n  --help             this text`;
}

/** Flags of one command, each with its kind; anything else is a usage error naming the flag. */
function commandFlags(flags: [string, string][], command: string): Record<string, string | number | boolean | string[]> {
  const known = COMMANDS[command].flags;
  const out: Record<string, string | number | boolean | string[]> = {};
  for (const [raw, value] of flags) {
    const name = normaliseFlagName(raw);
    const kind = known[name];
    if (!kind) throw new UsageError(`vlmkit ${command}: unknown option '--${raw}' (options: ${Object.keys(known).map((k) => `--${k.replace(/_/g, "-")}`).join(", ") || "none"})`);
    if (kind === "number") {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`vlmkit ${command}: --${raw} must be a number, got '${value}'`);
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

const wantsHelp = (argv: string[]) => argv.includes("--help") || argv.includes("-h");

/** The flags of a command other than train, or null when --help was asked (and printed). */
function parseCommand(command: string, argv: string[]): { positional: string[]; options: Record<string, string | number | boolean | string[]> } | null {
  if (wantsHelp(argv)) {
    console.log(commandHelp(command));
    return null;
  }
  const booleans = new Set(Object.entries(COMMANDS[command].flags).filter(([, kind]) => kind === "boolean").map(([name]) => name));
  const { positional, flags } = splitArgs(argv, booleans);
  return { positional, options: commandFlags(flags, command) };
}

/** Ctrl-C stops training after the current step with checkpoints/last saved; a second one exits at once. */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  process.on("SIGINT", () => {
    if (controller.signal.aborted) process.exit(130);
    console.error("\nvlmkit: interrupted; finishing the step and saving checkpoints/last (Ctrl-C again to quit now)");
    controller.abort();
  });
  return controller.signal;
}

async function train(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    console.log(`usage: vlmkit train --config run.yaml [--key value ...]\n\nkeys of run.yaml (each also a flag; later flags win over the file):\n${describeSchema().join("\n")}\n\nshort flags: --lr, --model <folder>, --model-config <config.json>, --adapter, --train, --val, --labels, --skip-bad, --output/-o, --device\nCtrl-C saves checkpoints/last; --resume continues from it.`);
    return 0;
  }
  const { positional, flags } = splitArgs(argv, booleanFlagNames());
  if (positional.length > 0) throw new UsageError(`vlmkit train: unexpected argument '${positional[0]}' (the run file goes after --config)`);
  const configFlags = flags.filter(([name]) => name === "config" || name === "c");
  if (configFlags.length > 1) throw new UsageError("vlmkit train: give --config once");
  const fromFile: RunConfig = configFlags.length ? readRunConfig(configFlags[0][1]) : {};
  let fromFlags: RunConfig;
  try {
    fromFlags = configFromFlags(flags.filter(([name]) => name !== "config" && name !== "c"));
  } catch (error) {
    throw error instanceof ConfigError ? new UsageError(error.message) : error;
  }
  const { trainRun } = await import("../runs/index.js");
  const summary = await trainRun(mergeConfigs(fromFile, fromFlags), console.log, { signal: interruptSignal() });
  if (summary.train.stopReason === "interrupted") {
    console.log(`interrupted at step ${summary.train.steps}: checkpoints/last saved in ${summary.runDir}; add --resume to continue`);
    return 130;
  }
  console.log(`run folder: ${summary.runDir}`);
  return 0;
}

async function evaluate(argv: string[]): Promise<number> {
  const parsed = parseCommand("eval", argv);
  if (!parsed) return 0;
  const { positional, options } = parsed;
  const runDir = (options.run as string | undefined) ?? positional[0];
  if (!runDir) throw new UsageError("vlmkit eval: give the run folder: vlmkit eval --run runs/x [--data test.jsonl]");
  const { evalRun } = await import("../runs/index.js");
  const cacheDir = options.cache_dir === undefined ? undefined : options.cache_dir === "null" ? null : (options.cache_dir as string);
  const evaluation = await evalRun(runDir, { data: options.data as string | undefined, split: options.split as string | undefined, cacheDir });
  console.log(evaluation.text);
  console.log(JSON.stringify({ split: evaluation.split, ...evaluation.metrics }));
  return 0;
}

async function predict(argv: string[]): Promise<number> {
  const parsed = parseCommand("predict", argv);
  if (!parsed) return 0;
  const { positional, options } = parsed;
  const inputs = [...((options.input as string[] | undefined) ?? []), ...positional];
  if (!options.run) throw new UsageError("vlmkit predict: give the run folder: vlmkit predict --run runs/x image.png [photos/ ...] (a video run: clip.mp4 or a folder of frames)");
  if (inputs.length === 0) throw new UsageError("vlmkit predict: give at least one input (an image file, a folder of images, or a video)");
  const { predictRun } = await import("../runs/index.js");
  const predictions = await predictRun(options.run as string, inputs, { topK: options.top_k as number | undefined, prompt: options.prompt as string | undefined });
  console.log(JSON.stringify(predictions.length === 1 ? predictions[0] : predictions, null, 2));
  return 0;
}

async function generateCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand("generate", argv);
  if (!parsed) return 0;
  const { positional, options } = parsed;
  const sources = ["run", "model", "model_config"].filter((k) => options[k] !== undefined);
  if (sources.length !== 1) throw new UsageError("vlmkit generate: give one of --run <run folder>, --model <model folder>, --model-config <config.json>");
  const inputs = [...((options.image as string[] | undefined) ?? []), ...((options.video as string[] | undefined) ?? []), ...positional];
  if (inputs.length === 0) throw new UsageError("vlmkit generate: give an image (--image a.png) or a video (--video clip.mp4)");
  if (!options.prompt) throw new UsageError('vlmkit generate: give the question with --prompt "What is in the image?"');
  const { generateText } = await import("../runs/index.js");
  const number = (key: string) => options[key] as number | undefined;
  const text = await generateText(
    { run: options.run as string | undefined, model: options.model as string | undefined, modelConfig: options.model_config as string | undefined },
    inputs,
    options.prompt as string,
    {
      maxNewTokens: number("max_new_tokens"), numFrames: number("num_frames"), seed: number("seed"), device: options.device as string | undefined,
      doSample: options.do_sample as boolean | undefined, temperature: number("temperature"), topK: number("top_k"), topP: number("top_p"),
    },
  );
  console.log(text);
  return 0;
}

async function exportCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand("export", argv);
  if (!parsed) return 0;
  const { positional, options } = parsed;
  const runDir = (options.run as string | undefined) ?? positional[0];
  if (!runDir || !options.output) throw new UsageError("vlmkit export: give the run folder and where to write: vlmkit export --run runs/x --output merged/");
  const { exportRun } = await import("../runs/index.js");
  const result = await exportRun(runDir, options.output as string, { adapterOnly: options.adapter_only as boolean | undefined });
  const what = options.adapter_only ? `the PEFT adapter (${result.loraLayers} LoRA layers)` : `the model with ${result.loraLayers} LoRA layer(s) merged`;
  console.log(`exported ${what} to ${result.dir}${result.taskFiles.length ? `, with ${result.taskFiles.join(" and ")}` : ""}`);
  return 0;
}

async function demo(argv: string[]): Promise<number> {
  const parsed = parseCommand("demo", argv);
  if (!parsed) return 0;
  const { positional, options } = parsed;
  const { runDemo } = await import("../runs/demo.js");
  const result = await runDemo({ dir: (options.dir as string | undefined) ?? positional[0], quick: options.quick as boolean | undefined, floor: options.floor as number | undefined });
  return result.passed ? 0 : 1;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "--version" || command === "-V" || rest.includes("--version")) {
    console.log(`vlmkit ${version()}`);
    return 0;
  }
  switch (command) {
    case "train":
      return train(rest);
    case "eval":
      return evaluate(rest);
    case "predict":
      return predict(rest);
    case "generate":
      return generateCommand(rest);
    case "export":
      return exportCommand(rest);
    case "demo":
      return demo(rest);
    case "demo-engine": {
      if (!parseCommand("demo-engine", rest)) return 0;
      const { runEngineDemo } = await import("./demo_engine.js");
      const { accuracy } = runEngineDemo();
      return accuracy >= 0.9 ? 0 : 1;
    }
    case "info": {
      if (!parseCommand("info", rest)) return 0;
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
    if (error instanceof UsageError) console.error("(vlmkit <command> --help shows the options)");
    if (process.env.VLMKIT_DEBUG && !(error instanceof ConfigError) && !(error instanceof UsageError)) console.error(error.stack);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
