// The run configuration: a YAML file (run.yaml) and command-line flags over the same keys, checked against one
// schema. Every error names the key (and the file line or the flag): an unknown key gets the closest known one
// as a suggestion, a wrong value gets the expected type.
import { readFileSync } from "node:fs";
import { parseYaml, stringifyYaml, type YamlValue } from "./yaml.js";
import { editDistance } from "../eval/answers.js";

// ---- the schema ----

type Map_ = { [key: string]: YamlValue };

interface FieldType {
  /** "an integer >= 1", "one of frozen, lora, full": completes "must be ...". */
  describe: string;
  /** The checked value, or a string saying what is wrong. */
  check(value: YamlValue): { ok: true; value: unknown } | { ok: false };
  /** Reads a command-line value (text) into a YAML value before check(). */
  fromFlag?(text: string): YamlValue;
}

interface Section {
  kind: "section";
  fields: Record<string, Field>;
  help?: string;
}

interface ListOf {
  kind: "list";
  item: Section;
  help?: string;
}

interface Leaf {
  kind: "leaf";
  type: FieldType;
  help?: string;
}

type Field = Section | ListOf | Leaf;

const ok = (value: unknown) => ({ ok: true as const, value });
const bad = { ok: false as const };

function nullable(type: FieldType): FieldType {
  return {
    describe: `${type.describe} or null`,
    check: (v) => (v === null ? ok(null) : type.check(v)),
    fromFlag: (text) => (text === "null" || text === "~" ? null : type.fromFlag ? type.fromFlag(text) : text),
  };
}

const scalarFromFlag = (text: string): YamlValue => {
  const parsed = parseYaml(text, "flag").value;
  return parsed === null && text !== "" && text !== "null" && text !== "~" ? text : parsed;
};

const string: FieldType = { describe: "a string", check: (v) => (typeof v === "string" ? ok(v) : typeof v === "number" ? ok(String(v)) : bad), fromFlag: (t) => t };

function integer(min = -Infinity): FieldType {
  return {
    describe: min === -Infinity ? "an integer" : `an integer >= ${min}`,
    check: (v) => (typeof v === "number" && Number.isInteger(v) && v >= min ? ok(v) : bad),
    fromFlag: scalarFromFlag,
  };
}

function number(min = -Infinity, max = Infinity, exclusiveMax = false): FieldType {
  const range = min > -Infinity && max < Infinity ? ` in [${min}, ${max}${exclusiveMax ? ")" : "]"}` : min > -Infinity ? ` >= ${min}` : "";
  return {
    describe: `a number${range}`,
    check: (v) => (typeof v === "number" && Number.isFinite(v) && v >= min && (exclusiveMax ? v < max : v <= max) ? ok(v) : bad),
    fromFlag: scalarFromFlag,
  };
}

const boolean: FieldType = {
  describe: "true or false",
  check: (v) => (typeof v === "boolean" ? ok(v) : bad),
  fromFlag: (t) => (/^(true|yes|1)$/i.test(t) ? true : /^(false|no|0)$/i.test(t) ? false : t),
};

function oneOf(...values: string[]): FieldType {
  return { describe: `one of ${values.join(", ")}`, check: (v) => (typeof v === "string" && values.includes(v) ? ok(v) : bad), fromFlag: (t) => t };
}

/** A list of strings; a flag gives it comma-separated or as a flow list [a, b]. */
const stringList: FieldType = {
  describe: "a list of strings",
  check: (v) => (Array.isArray(v) && v.every((s) => typeof s === "string") ? ok(v) : bad),
  fromFlag: (t) => (t.trim().startsWith("[") ? parseYaml(t, "flag").value : t === "" ? [] : t.split(",").map((s) => s.trim())),
};

function either(a: FieldType, b: FieldType): FieldType {
  return {
    describe: `${a.describe} or ${b.describe}`,
    check: (v) => {
      const first = a.check(v);
      return first.ok ? first : b.check(v);
    },
    fromFlag: (t) => {
      const fromA = a.fromFlag ? a.fromFlag(t) : t;
      if (a.check(fromA).ok) return fromA;
      return b.fromFlag ? b.fromFlag(t) : t;
    },
  };
}

/** LoRA targets: a list of layer names, or one regex / "all-linear". A flag with regex characters is a regex. */
const targetModules: FieldType = {
  describe: "a list of layer names or one regex (or all-linear)",
  check: (v) => either(stringList, string).check(v),
  fromFlag: (t) => (t.trim().startsWith("[") ? parseYaml(t, "flag").value : t === "all-linear" || /[\\()|*+?^$\[\]{}]/.test(t) ? t : t.split(",").map((s) => s.trim())),
};

/** Class names in index order, or the path of a labels.json file. */
const labelList: FieldType = {
  describe: "a list of class names or the path of a labels.json file",
  check: (v) => either(stringList, string).check(v),
  fromFlag: (t) => (t.trim().startsWith("[") ? parseYaml(t, "flag").value : /\.json$/i.test(t) || t.includes("/") ? t : t.split(",").map((s) => s.trim())),
};

const leaf = (type: FieldType, help?: string): Leaf => ({ kind: "leaf", type, help });
const section = (fields: Record<string, Field>, help?: string): Section => ({ kind: "section", fields, help });

const adaptation = (help: string): Section =>
  section(
    {
      mode: leaf(oneOf("frozen", "lora", "full"), "frozen (default), lora or full"),
      r: leaf(integer(1), "LoRA rank (default 8)"),
      alpha: leaf(number(0), "LoRA alpha (default 16)"),
      dropout: leaf(number(0, 1, true), "dropout on the LoRA input (default 0)"),
      rslora: leaf(boolean, "scale by alpha / sqrt(r) instead of alpha / r"),
      target_modules: leaf(targetModules, "layer names (list) or one regex over the path inside the component, or all-linear"),
    },
    help,
  );

/** The keys of a run file. Training options sit at the top level so that flags stay short (--epochs 3). */
export const RUN_SCHEMA: Section = section(
  {
    task: leaf(oneOf("classification", "generation"), "classification (a head on the backbone) or generation (fine-tune the answers)"),
    output_dir: leaf(string, "the run folder: config, label map, checkpoints, metrics, reports"),
    model: section(
      {
        path: leaf(string, "a Hugging Face model folder (config.json + safetensors + tokenizer + processor)"),
        config: leaf(string, "a config.json to build the model from with random weights; tokenizer and processor files come from its folder"),
        dtype: leaf(oneOf("float32", "bfloat16", "float16"), "weight dtype (default float32)"),
        device: leaf(string, "cpu, cuda or cuda:N (default: cuda when available)"),
        adapter: leaf(nullable(string), "a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) to start from"),
      },
      "where the model comes from (path or config)",
    ),
    data: section(
      {
        train: leaf(string, "training records: a JSONL file ({image | images | video, label} or conversations) or an image folder"),
        val: leaf(nullable(string), "validation records (default: val_ratio of train)"),
        test: leaf(nullable(string), "records `vlmkit eval` scores by default"),
        val_ratio: leaf(number(0, 1, true), "share of train held out when there is no val (default 0.2)"),
        labels: leaf(labelList, "the class names in index order, or a labels.json file (default: sorted labels of train)"),
        skip_bad: leaf(boolean, "skip bad records and report them instead of stopping at the first"),
        num_frames: leaf(integer(1), "frames sampled evenly from each video (default 8)"),
        prompt: leaf(string, "the question shown with each image for classification (default \"What is in the image?\")"),
        max_length: leaf(integer(8), "token limit of one sample (default 2048, LLaVA-1.5's): a longer conversation is cut, never inside its images; a longer classification prompt is an error"),
        max_train_samples: leaf(nullable(integer(1)), "use only the first N training records (quick runs)"),
        max_eval_samples: leaf(nullable(integer(1)), "use only the first N validation / evaluation records"),
      },
      "the records",
    ),
    components: section(
      {
        vision: adaptation("the vision tower"),
        projector: adaptation("the multimodal projector"),
        language: adaptation("the language model (and its LM head)"),
      },
      "frozen, LoRA or full training per component",
    ),
    head: section(
      {
        pooling: leaf(oneOf("last", "mean", "cls"), "token pooling: last non-padding token (default), masked mean, or the first token"),
        hidden_layer: leaf(integer(), "which hidden state feeds the head (-1 = last layer, default)"),
        hidden_size: leaf(integer(0), "hidden size of the two-layer head; 0 = a single Linear (default 256)"),
        dropout: leaf(number(0, 1, true), "dropout inside the head (default 0.1)"),
        cache_features: leaf(boolean, "with a frozen backbone, compute features once and reuse them (default true)"),
        cache_dir: leaf(
          nullable(string),
          "where cached features persist between runs, keyed by model, processor, prompt, layer, pooling and data contents " +
            "(default <output_dir>/../.vlmkit-cache/features); null keeps them for the run only",
        ),
        normalize_features: leaf(boolean, "standardize pooled features with the training set's mean and std before the head (default true)"),
      },
      "the classification head",
    ),
    generation: section(
      {
        max_new_tokens: leaf(integer(1), "tokens generated per answer when scoring (default 16)"),
        skip_truncated: leaf(boolean, "skip (and count) samples whose text would be cut inside the image tokens instead of stopping"),
      },
      "generative fine-tuning and scoring",
    ),
    epochs: leaf(integer(1), "passes over the training data (default 1)"),
    max_steps: leaf(nullable(integer(1)), "optimizer steps in total; overrides epochs"),
    batch_size: leaf(integer(1), "samples per micro-batch (default 8)"),
    eval_batch_size: leaf(integer(1), "samples per evaluation batch (default batch_size)"),
    grad_accumulation: leaf(integer(1), "micro-batches per optimizer step (default 1)"),
    learning_rate: leaf(number(0), "peak learning rate (default 1e-4)"),
    weight_decay: leaf(number(0), "AdamW weight decay, not on biases and norms (default 0.01)"),
    warmup_steps: leaf(nullable(integer(0)), "linear warmup steps (default: warmup_ratio)"),
    warmup_ratio: leaf(number(0, 1), "warmup as a share of all steps (default 0)"),
    schedule: leaf(oneOf("constant", "linear", "cosine"), "learning-rate schedule after warmup (default linear)"),
    max_grad_norm: leaf(nullable(number(0)), "clip the gradient norm to this (default: no clipping)"),
    autocast: leaf(nullable(oneOf("bf16", "fp16")), "mixed precision on CUDA (default none)"),
    eval_every: leaf(either(oneOf("epoch"), integer(1)), "evaluate every epoch (default) or every N steps"),
    best_metric: leaf(string, "the metric that picks the best checkpoint (default accuracy)"),
    best_mode: leaf(oneOf("max", "min"), "whether larger is better for best_metric"),
    early_stopping_patience: leaf(nullable(integer(1)), "stop after this many evaluations without improvement"),
    seed: leaf(integer(0), "seeds weights, dropout and data order (default 42)"),
    resume: leaf(boolean, "continue from output_dir's last checkpoint"),
    overwrite: leaf(boolean, "start afresh in an output_dir that holds a run"),
    progress: leaf(boolean, "progress bar (default true)"),
    default_param_groups: leaf(boolean, "parameters no param_groups entry matches go to decay / no_decay (default true); false makes each an error"),
    nan_guard: section(
      {
        max_consecutive: leaf(integer(1), "stop after this many non-finite steps in a row (default 5)"),
        lr_factor: leaf(number(0, 1), "multiply the learning rate by this after a non-finite step (default 0.5)"),
      },
      "what a non-finite loss or gradient does: the step is skipped",
    ),
    param_groups: {
      kind: "list",
      item: section({
        name: leaf(string, "group name"),
        match: leaf(string, "regex over parameter names"),
        lr: leaf(number(0), "learning rate of the group"),
        weight_decay: leaf(number(0), "weight decay of the group"),
      }),
      help: "learning rate / weight decay per group of parameters",
    },
    eval: section(
      {
        top_k: leaf(integer(1), "k of the top-k accuracy and of predictions (default 5)"),
        priority_classes: leaf(stringList, "classes whose accuracy is reported on its own"),
      },
      "evaluation",
    ),
  },
  undefined,
);

/** Short flags: the whole flag name -> the key it sets (--model <folder>, --model-config <config.json>, --lr 1e-4). */
export const FLAG_ALIASES: Record<string, string> = {
  lr: "learning_rate",
  model: "model.path",
  model_config: "model.config",
  device: "model.device",
  dtype: "model.dtype",
  train: "data.train",
  val: "data.val",
  test: "data.test",
  labels: "data.labels",
  skip_bad: "data.skip_bad",
  num_frames: "data.num_frames",
  prompt: "data.prompt",
  output: "output_dir",
  o: "output_dir",
  top_k: "eval.top_k",
  cache_dir: "head.cache_dir",
  max_new_tokens: "generation.max_new_tokens",
  adapter: "model.adapter",
  max_train_samples: "data.max_train_samples",
  max_eval_samples: "data.max_eval_samples",
};

// ---- the typed configuration ----

export interface AdaptationConfig {
  mode?: "frozen" | "lora" | "full";
  r?: number;
  alpha?: number;
  dropout?: number;
  rslora?: boolean;
  target_modules?: string[] | string;
}

export interface RunConfig {
  task?: "classification" | "generation";
  output_dir?: string;
  model?: { path?: string; config?: string; dtype?: "float32" | "bfloat16" | "float16"; device?: string; adapter?: string | null };
  data?: {
    train?: string; val?: string | null; test?: string | null; val_ratio?: number; labels?: string[] | string; skip_bad?: boolean;
    num_frames?: number; prompt?: string; max_length?: number; max_train_samples?: number | null; max_eval_samples?: number | null;
  };
  components?: { vision?: AdaptationConfig; projector?: AdaptationConfig; language?: AdaptationConfig };
  head?: { pooling?: "last" | "mean" | "cls"; hidden_layer?: number; hidden_size?: number; dropout?: number; cache_features?: boolean; cache_dir?: string | null; normalize_features?: boolean };
  generation?: { max_new_tokens?: number; skip_truncated?: boolean };
  epochs?: number;
  max_steps?: number | null;
  batch_size?: number;
  eval_batch_size?: number;
  grad_accumulation?: number;
  learning_rate?: number;
  weight_decay?: number;
  warmup_steps?: number | null;
  warmup_ratio?: number;
  schedule?: "constant" | "linear" | "cosine";
  max_grad_norm?: number | null;
  autocast?: "bf16" | "fp16" | null;
  eval_every?: "epoch" | number;
  best_metric?: string;
  best_mode?: "max" | "min";
  early_stopping_patience?: number | null;
  seed?: number;
  resume?: boolean;
  overwrite?: boolean;
  progress?: boolean;
  default_param_groups?: boolean;
  nan_guard?: { max_consecutive?: number; lr_factor?: number };
  param_groups?: { name?: string; match?: string; lr?: number; weight_decay?: number }[];
  eval?: { top_k?: number; priority_classes?: string[] };
}

// ---- errors ----

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.length === 1 ? problems[0] : `${problems.length} problems in the run configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** The closest known key, when it is close enough to be a typo. */
export function suggestKey(unknown: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const key of known) {
    const distance = editDistance(unknown.toLowerCase(), key.toLowerCase());
    if (distance < bestDistance) {
      best = key;
      bestDistance = distance;
    }
  }
  if (best === null) return null;
  const contained = best.includes(unknown) || unknown.includes(best);
  return bestDistance <= Math.max(2, Math.floor(best.length / 3)) || (contained && unknown.length >= 3) ? best : null;
}

function describeValue(value: YamlValue): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

// ---- validation ----

interface Where {
  /** "run.yaml" or "--flags". */
  source: string;
  lineOf?: (path: string) => number | undefined;
}

function located(where: Where, path: string): string {
  const line = where.lineOf?.(path);
  return line !== undefined ? `${where.source}:${line}` : where.source;
}

function validateSection(schema: Section, value: YamlValue, path: string, where: Where, problems: string[]): Map_ {
  const out: Map_ = {};
  if (value === null) return out;
  if (typeof value !== "object" || Array.isArray(value)) {
    problems.push(`${located(where, path)}: '${path}' must be a map of keys (${Object.keys(schema.fields).join(", ")}), got ${describeValue(value)}`);
    return out;
  }
  for (const [key, item] of Object.entries(value)) {
    const keyPath = path ? `${path}.${key}` : key;
    const field = schema.fields[key];
    if (!field) {
      const suggestion = suggestKey(key, Object.keys(schema.fields));
      const inSection = path ? ` (in '${path}')` : "";
      const line = where.lineOf?.(keyPath);
      problems.push(
        `unknown key '${key}'${inSection} in ${where.source}${line !== undefined ? `:${line}` : ""}` +
          (suggestion ? ` (did you mean '${suggestion}'?)` : `; known keys: ${Object.keys(schema.fields).join(", ")}`),
      );
      continue;
    }
    const checked = validateField(field, item, keyPath, where, problems);
    if (checked !== undefined) out[key] = checked as YamlValue;
  }
  return out;
}

function validateField(field: Field, value: YamlValue, path: string, where: Where, problems: string[]): unknown {
  if (field.kind === "section") return validateSection(field, value, path, where, problems);
  if (field.kind === "list") {
    if (value === null) return [];
    if (!Array.isArray(value)) {
      problems.push(`${located(where, path)}: '${path}' must be a list, got ${describeValue(value)}`);
      return undefined;
    }
    return value.map((item, i) => validateSection(field.item, item, `${path}.${i}`, where, problems));
  }
  const result = field.type.check(value);
  if (!result.ok) {
    problems.push(`${located(where, path)}: '${path}' must be ${field.type.describe}, got ${describeValue(value)}`);
    return undefined;
  }
  return result.value;
}

/** Checks a parsed document against the schema; throws ConfigError listing every problem. */
export function validateRunConfig(value: YamlValue, where: Where = { source: "run.yaml" }): RunConfig {
  const problems: string[] = [];
  if (value !== null && (typeof value !== "object" || Array.isArray(value))) {
    throw new ConfigError([`${where.source}: a run file is a map of keys (task, model, data, ...), got ${describeValue(value)}`]);
  }
  const config = validateSection(RUN_SCHEMA, value, "", where, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return config as RunConfig;
}

/** Reads and validates a run file. */
export function readRunConfig(path: string): RunConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError([`${path}: cannot read the run file (${(error as Error).message})`]);
  }
  const document = parseYaml(text, path);
  return validateRunConfig(document.value, { source: path, lineOf: (p) => document.lines.get(p) });
}

// ---- command-line flags ----

export interface ParsedArgs {
  /** Words that are not flags (the command, file arguments). */
  positional: string[];
  /** --key value pairs in order; a flag without a value is "true". */
  flags: [string, string][];
}

/** Splits argv into positional words and --key value / --key=value / --flag pairs (-- ends flags). */
export function splitArgs(argv: string[], booleanFlags: Set<string> = new Set()): ParsedArgs {
  const positional: string[] = [];
  const flags: [string, string][] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith("--") || (arg.startsWith("-") && arg.length === 2 && !/^-[0-9]$/.test(arg))) {
      const body = arg.replace(/^--?/, "");
      const eq = body.indexOf("=");
      if (eq >= 0) {
        flags.push([body.slice(0, eq), body.slice(eq + 1)]);
        continue;
      }
      if (body.startsWith("no-") && booleanFlags.has(normaliseFlagName(body.slice(3)))) {
        flags.push([body.slice(3), "false"]);
        continue;
      }
      const next = argv[i + 1];
      if (booleanFlags.has(normaliseFlagName(body)) && (next === undefined || !/^(true|false|yes|no|1|0)$/i.test(next))) {
        flags.push([body, "true"]);
        continue;
      }
      if (next === undefined || (next.startsWith("--") && next.length > 2)) {
        flags.push([body, "true"]);
        continue;
      }
      flags.push([body, next]);
      i++;
      continue;
    }
    positional.push(arg);
  }
  return { positional, flags };
}

/** --learning-rate and --learning_rate are the same key. */
export function normaliseFlagName(name: string): string {
  return name.replace(/-/g, "_");
}

/** Every boolean key of the schema as a flag name (dotted), so "--skip_bad" needs no value. */
export function booleanFlagNames(schema: Section = RUN_SCHEMA, prefix = ""): Set<string> {
  const names = new Set<string>();
  for (const [key, field] of Object.entries(schema.fields)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (field.kind === "section") for (const name of booleanFlagNames(field, path)) names.add(name);
    else if (field.kind === "leaf" && field.type === boolean) names.add(path);
  }
  if (prefix === "") for (const [alias, target] of Object.entries(FLAG_ALIASES)) if (names.has(target)) names.add(alias);
  return names;
}

/** Where a flag lands in the config: "lr" -> ["learning_rate"], "components.language.mode" -> [...]. */
function resolveFlagPath(flag: string, problems: string[]): { path: string[]; field: Leaf | ListOf } | null {
  const name = normaliseFlagName(flag);
  const parts = (FLAG_ALIASES[name] ?? name).split(".");
  let schema: Section = RUN_SCHEMA;
  const path: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const key = parts[i];
    const field = schema.fields[key];
    const here = [...path, key].join(".");
    if (!field) {
      const candidates = i === 0 ? [...Object.keys(schema.fields), ...Object.keys(FLAG_ALIASES)] : Object.keys(schema.fields);
      const suggestion = suggestKey(key, candidates);
      const rest = parts.slice(i + 1);
      const guess = suggestion === null ? null : [...path, suggestion, ...rest].join(".");
      problems.push(`unknown option '--${flag}'` + (guess ? ` (did you mean '--${guess}'?)` : path.length ? `; '${path.join(".")}' has: ${Object.keys(schema.fields).join(", ")}` : "; see `vlmkit train --help`"));
      return null;
    }
    path.push(key);
    if (field.kind === "section") {
      if (i === parts.length - 1) {
        problems.push(`option '--${flag}' names the section '${here}'; give one of its keys: ${Object.keys(field.fields).map((k) => `--${here}.${k}`).join(", ")}`);
        return null;
      }
      schema = field;
      continue;
    }
    if (i !== parts.length - 1) {
      problems.push(`unknown option '--${flag}': '${here}' has no keys below it`);
      return null;
    }
    return { path, field };
  }
  return null;
}

/**
 * The flags as a config (validated like a run file): `--lr 1e-4`, `--components.language.mode lora`,
 * `--data.labels a,b,c`, `--param_groups '[{name: x, match: "^lm_head"}]'`. Flags not in the schema are errors.
 */
export function configFromFlags(flags: [string, string][]): RunConfig {
  const problems: string[] = [];
  const tree: Map_ = {};
  for (const [flag, text] of flags) {
    const resolved = resolveFlagPath(flag, problems);
    if (!resolved) continue;
    const { path, field } = resolved;
    let value: YamlValue;
    try {
      value = field.kind === "leaf" ? (field.type.fromFlag ? field.type.fromFlag(text) : text) : parseYaml(text, `--${flag}`).value;
    } catch (error) {
      problems.push(`--${flag}: ${(error as Error).message}`);
      continue;
    }
    let node = tree;
    for (const key of path.slice(0, -1)) node = (node[key] ??= {}) as Map_;
    node[path[path.length - 1]] = value;
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return validateRunConfig(tree, { source: "the command line" });
}

/** Later layers win key by key inside sections; lists and scalars are replaced whole. */
export function mergeConfigs(...layers: RunConfig[]): RunConfig {
  const merge = (a: Map_, b: Map_): Map_ => {
    const out: Map_ = { ...a };
    for (const [key, value] of Object.entries(b)) {
      const previous = out[key];
      const bothMaps = value !== null && typeof value === "object" && !Array.isArray(value) && previous !== null && typeof previous === "object" && !Array.isArray(previous);
      out[key] = bothMaps ? merge(previous as Map_, value as Map_) : value;
    }
    return out;
  };
  return layers.reduce<Map_>((acc, layer) => merge(acc, layer as unknown as Map_), {}) as RunConfig;
}

/** The resolved configuration as YAML (written to the run folder; `vlmkit train --config` reads it back). */
export function runConfigToYaml(config: RunConfig, header = ""): string {
  // keys in the schema's order, so every run.yaml reads the same way
  const ordered = (value: YamlValue, schema: Field): YamlValue => {
    if (value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) return schema.kind === "list" ? value.map((item) => ordered(item, schema.item)) : value;
    if (schema.kind !== "section") return value;
    const out: Map_ = {};
    for (const [key, field] of Object.entries(schema.fields)) if (value[key] !== undefined) out[key] = ordered(value[key], field);
    for (const [key, item] of Object.entries(value)) if (!(key in out)) out[key] = item;
    return out;
  };
  const clean = ordered(JSON.parse(JSON.stringify(config)) as YamlValue, RUN_SCHEMA);
  return (header ? header.split("\n").map((l) => `# ${l}`).join("\n") + "\n" : "") + stringifyYaml(clean);
}

/** The documented keys, one per line with their help text ("vlmkit train --help"). */
export function describeSchema(schema: Section = RUN_SCHEMA, prefix = ""): string[] {
  const lines: string[] = [];
  for (const [key, field] of Object.entries(schema.fields)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (field.kind === "section") lines.push(...describeSchema(field, path));
    else if (field.kind === "list") lines.push(`  --${path.padEnd(34)} ${field.help ?? ""} (a list of {${Object.keys(field.item.fields).join(", ")}})`);
    else lines.push(`  --${path.padEnd(34)} ${field.help ?? ""}`);
  }
  return lines;
}
