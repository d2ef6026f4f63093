// A Hugging Face model folder: config.json, generation_config.json and safetensors weights (single file
// or sharded with model.safetensors.index.json), loaded into a Module whose property paths are the
// weight names.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Tensor, isFloatingDType, toDType, type DType, type DTypeLike, type DeviceLike } from "../../torch/index.js";
import { Module, Parameter } from "../../torch/nn/index.js";
import { SafetensorsCheckpoint } from "../../torch/safetensors.js";
import { ConfigReader, isJsonObject, type JsonObject } from "./config_reader.js";

/** Reads a JSON object from a file, with errors that name the file. */
export function readJsonObject(path: string): JsonObject {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isJsonObject(value)) throw new Error(`${path} must hold a JSON object, got ${Array.isArray(value) ? "an array" : typeof value}`);
  return value;
}

function checkFolder(dir: string): void {
  if (!existsSync(dir)) throw new Error(`model folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a folder: pass the Hugging Face model folder (the one holding config.json)`);
}

/** config.json of a model folder, as a reader that names the file in its errors. */
export function readModelConfig(dir: string): ConfigReader {
  checkFolder(dir);
  const file = join(dir, "config.json");
  if (!existsSync(file)) throw new Error(`${dir} has no config.json; a Hugging Face model folder needs one (save_pretrained writes it)`);
  return new ConfigReader(readJsonObject(file), file);
}

/** The fields of generation_config.json that generate() uses (transformers' GenerationConfig names). */
export interface GenerationConfig {
  bos_token_id?: number;
  eos_token_id?: number[];
  pad_token_id?: number;
  do_sample?: boolean;
  temperature?: number;
  top_k?: number;
  top_p?: number;
  max_new_tokens?: number;
  max_length?: number;
}

/** Reads generation settings from a generation_config.json (or config.json) reader. */
export function parseGenerationConfig(reader: ConfigReader): GenerationConfig {
  const config: GenerationConfig = {};
  const bos = reader.int("bos_token_id", null);
  if (bos !== null) config.bos_token_id = bos;
  const eos = reader.intOrIntList("eos_token_id");
  if (eos !== null) config.eos_token_id = eos;
  const pad = reader.int("pad_token_id", null);
  if (pad !== null) config.pad_token_id = pad;
  if (reader.has("do_sample")) config.do_sample = reader.bool("do_sample", false);
  const temperature = reader.float("temperature", null);
  if (temperature !== null) config.temperature = temperature;
  const topK = reader.int("top_k", null);
  if (topK !== null) config.top_k = topK;
  const topP = reader.float("top_p", null);
  if (topP !== null) config.top_p = topP;
  const maxNew = reader.int("max_new_tokens", null);
  if (maxNew !== null) config.max_new_tokens = maxNew;
  const maxLength = reader.int("max_length", null);
  if (maxLength !== null) config.max_length = maxLength;
  return config;
}

/** generation_config.json of a model folder, or null when the folder has none. */
export function readGenerationConfig(dir: string): GenerationConfig | null {
  const file = join(dir, "generation_config.json");
  if (!existsSync(file)) return null;
  return parseGenerationConfig(new ConfigReader(readJsonObject(file), file));
}

/** "auto" keeps each weight's dtype from the file. */
export type LoadDType = DTypeLike | "auto";

export interface LoadWeightsOptions {
  /** dtype of floating weights (default float32; "auto" = as stored). Integer tensors keep theirs. */
  dtype?: LoadDType;
  device?: DeviceLike;
  /** Maps a checkpoint name to the module's name, or null to skip it (renames of old layouts). */
  renameKey?: (checkpointName: string) => string | null;
  /**
   * [tied, source] parameter pairs that share one Parameter (lm_head.weight and the input embeddings when
   * tie_word_embeddings): the tied name may be absent from the file, and is ignored when present.
   */
  tiedWeights?: [string, string][];
  /** Checkpoint names that are dropped without complaint (default: rotary inv_freq buffers of old files). */
  ignoreKeys?: RegExp[];
  /** Allow checkpoint tensors that the module has no place for (default false: they are an error). */
  allowUnexpected?: boolean;
}

export interface LoadWeightsResult {
  loaded: string[];
  /** Checkpoint tensors without a place in the module (only when allowUnexpected). */
  unexpectedKeys: string[];
}

const DEFAULT_IGNORED = [/(^|\.)rotary_emb\.inv_freq$/];
const LISTED = 12;
const listNames = (names: string[]) => names.slice(0, LISTED).join(", ") + (names.length > LISTED ? `, ... (${names.length - LISTED} more)` : "");

/**
 * Loads a safetensors checkpoint (a model folder, an index file or a .safetensors file) into model: every
 * parameter and persistent buffer must be found with the right shape, and every checkpoint tensor must
 * have a place, else the error lists what is missing, unexpected or mis-shaped. Tensors are read one at
 * a time straight into place (the previous placeholder is freed), so peak memory is one model.
 */
export function loadWeights(model: Module, source: string | SafetensorsCheckpoint, options: LoadWeightsOptions = {}): LoadWeightsResult {
  const checkpoint = typeof source === "string" ? new SafetensorsCheckpoint(source) : source;
  const dtype: DType | null = options.dtype === undefined ? "float32" : options.dtype === "auto" ? null : toDType(options.dtype);
  const device = options.device ?? "cpu";
  const tied = new Map(options.tiedWeights ?? []);
  const ignored = options.ignoreKeys ?? DEFAULT_IGNORED;
  const targets = model.stateDict();
  const parameterNames = new Set(model.namedParameters("", false).map(([name]) => name));

  // Pair checkpoint names with module names, and check shapes before reading anything.
  const plan: [string, string][] = [];
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  for (const fileName of checkpoint.keys()) {
    if (ignored.some((re) => re.test(fileName))) continue;
    const name = options.renameKey ? options.renameKey(fileName) : fileName;
    if (name === null || tied.has(name)) continue;
    const target = targets.get(name);
    if (!target) {
      unexpected.push(fileName === name ? name : `${fileName} (as ${name})`);
      continue;
    }
    const shape = checkpoint.info(fileName).shape;
    if (shape.length !== target.ndim || shape.some((d, i) => d !== target.shape[i])) {
      mismatched.push(`${name}: checkpoint [${shape}], model [${target.shape}]`);
    }
    plan.push([fileName, name]);
  }
  const planned = new Set(plan.map(([, name]) => name));
  const missing = [...targets.keys()].filter((name) => !planned.has(name) && !(tied.has(name) && planned.has(tied.get(name)!)));
  const problems: string[] = [];
  if (mismatched.length > 0) problems.push(`shape mismatch (${mismatched.length}): ${listNames(mismatched)}`);
  if (missing.length > 0) problems.push(`missing from the checkpoint (${missing.length}): ${listNames(missing)}`);
  if (unexpected.length > 0 && !options.allowUnexpected) problems.push(`not in the model (${unexpected.length}): ${listNames(unexpected)}`);
  if (problems.length > 0) {
    throw new Error(
      `cannot load ${checkpoint.path} into ${model.constructor.name}:\n  ${problems.join("\n  ")}\n` +
        "Fix: check that config.json describes this checkpoint (sizes, layer count, tie_word_embeddings, biases).",
    );
  }

  for (const [fileName, name] of plan) {
    const stored = checkpoint.info(fileName).dtype;
    const wanted = dtype !== null && isFloatingDType(stored) ? dtype : stored;
    const value = checkpoint.get(fileName, { dtype: wanted, device });
    if (parameterNames.has(name)) {
      model.setParameter(name, value);
    } else {
      const target = targets.get(name)!;
      setBuffer(model, name, target, value);
    }
  }
  // Re-point tied parameters at their (now loaded) source, freeing the placeholders.
  for (const [tiedName, sourceName] of tied) {
    if (!parameterNames.has(tiedName)) continue;
    model.setParameter(tiedName, model.getParameter(sourceName));
  }
  model.to({ device });
  return { loaded: plan.map(([, name]) => name), unexpectedKeys: unexpected };
}

function setBuffer(model: Module, name: string, target: Tensor, value: Tensor): void {
  const dot = name.lastIndexOf(".");
  const owner = dot < 0 ? model : model.getSubmodule(name.slice(0, dot));
  const key = dot < 0 ? name : name.slice(dot + 1);
  if (target instanceof Parameter) throw new Error(`internal: ${name} is a parameter`);
  owner.registerBuffer(key, value, true);
}
