// loadPretrained(): open a Hugging Face folder and build the model its config.json names. Architectures
// register themselves (src/models/<arch>/index.ts calls registerArchitecture), keyed by model_type, with
// the transformers class names of "architectures" as a fallback.
import { readFileSync } from "node:fs";
import type { DeviceLike } from "../torch/index.js";
import { Module, Embedding, skipRandomInit } from "../torch/nn/index.js";
import { ConfigReader, isJsonObject, type JsonObject } from "./common/config_reader.js";
import {
  loadWeights, parseGenerationConfig, readGenerationConfig, readModelConfig,
  type GenerationConfig, type LoadDType, type LoadWeightsOptions,
} from "./common/hf_folder.js";
import type { CausalLMInputs, CausalLMOutput } from "./common/outputs.js";
import type { VlmFactory } from "./vlm.js";
import { checkModelFits } from "./common/size_check.js";

export interface LoadPretrainedOptions {
  /** Where the weights go (default "cpu"). */
  device?: DeviceLike;
  /** dtype of floating weights (default float32; "auto" keeps the checkpoint's). */
  dtype?: LoadDType;
  /**
   * Bytes the weights may take; a config describing a larger model is refused before anything is allocated
   * (default: os.totalmem() on the CPU, the device's memory on CUDA).
   */
  memoryLimit?: number;
}

/** What a loader gets: the folder, its parsed config, and the caller's options. */
export interface PretrainedContext {
  dir: string;
  config: ConfigReader;
  generationConfig: GenerationConfig;
  options: LoadPretrainedOptions;
}

export type ArchitectureLoader = (context: PretrainedContext) => Module | Promise<Module>;

interface ArchitectureEntry {
  modelType: string;
  loader: ArchitectureLoader;
  architectures: string[];
  /** Vision-language families: wraps a loaded model in the VLM interface (src/models/vlm.ts). */
  vlm?: VlmFactory;
}

const registry = new Map<string, ArchitectureEntry>();

/**
 * Makes loadPretrained() build folders whose config.json has this model_type (or, when model_type is
 * absent, one of these transformers class names in "architectures"). Registering a type again replaces it.
 */
export function registerArchitecture(modelType: string, loader: ArchitectureLoader, options: { architectures?: string[]; vlm?: VlmFactory } = {}): void {
  registry.set(modelType, { modelType, loader, architectures: options.architectures ?? [], vlm: options.vlm });
}

/** The model_type values loadPretrained() understands, sorted. */
export function supportedModelTypes(): string[] {
  return [...registry.keys()].sort();
}

/** The model_type values loadVlm() understands (families registered with a VLM factory), sorted. */
export function supportedVlmTypes(): string[] {
  return [...registry.values()].filter((entry) => entry.vlm).map((entry) => entry.modelType).sort();
}

/** The registered family of a config file: its model_type and, for vision-language families, the VLM factory. */
export function vlmFactoryOf(configFile: string): { modelType: string; vlm?: VlmFactory } {
  const entry = findEntry(readConfigFile(configFile));
  return { modelType: entry.modelType, vlm: entry.vlm };
}

function findEntry(config: ConfigReader): ArchitectureEntry {
  const modelType = config.string("model_type", null);
  const architectures = config.stringList("architectures") ?? [];
  const byType = modelType === null ? undefined : registry.get(modelType);
  if (byType) return byType;
  if (modelType === null) {
    for (const entry of registry.values()) {
      if (entry.architectures.some((a) => architectures.includes(a))) return entry;
    }
  }
  const what = modelType !== null ? `model_type "${modelType}"` : architectures.length > 0 ? `architectures ${JSON.stringify(architectures)}` : "no model_type";
  throw new Error(`${config.file}: ${what} is not supported; supported model types: ${supportedModelTypes().join(", ") || "none registered"}`);
}

/** A loaded model with the generation defaults of its folder. */
export type PretrainedModel<M extends Module = Module> = M & { generationConfig?: GenerationConfig };

/**
 * Loads a Hugging Face model folder (config.json + safetensors weights) as the vlmkit model its model_type
 * names, in eval mode, with generation_config.json (or config.json's token ids) as model.generationConfig.
 *
 *   const model = await loadPretrained<Qwen2ForCausalLM>("path/to/Qwen2-0.5B", { device: "cuda", dtype: "bf16" });
 *
 * The type argument only names what the caller expects; the class is chosen by config.json.
 */
export async function loadPretrained<M extends Module = Module>(dir: string, options: LoadPretrainedOptions = {}): Promise<PretrainedModel<M>> {
  const config = readModelConfig(dir);
  const entry = findEntry(config);
  checkModelFits(config, { device: deviceName(options.device), dtype: options.dtype === undefined ? undefined : String(options.dtype), memoryLimit: options.memoryLimit });
  const generationConfig = readGenerationConfig(dir) ?? parseGenerationConfig(config);
  const model = (await entry.loader({ dir, config, generationConfig, options })) as PretrainedModel<M>;
  model.generationConfig = generationConfig;
  model.eval();
  return model;
}

// ---- causal language models (the text side, also the language_model of VLMs) ----

/** What every causal LM here offers (LlamaForCausalLM, Qwen2ForCausalLM, ...). */
export interface CausalLM extends Module {
  readonly config: { model_type: string; vocab_size: number; hidden_size: number; eos_token_id: number[] | null; pad_token_id: number | null; bos_token_id: number | null };
  forward(inputs: CausalLMInputs): CausalLMOutput;
  /** [tied, source] parameter names that share one tensor. */
  tiedWeights(): [string, string][];
  getInputEmbeddings(): Embedding;
}

export type CausalLMBuilder = (config: ConfigReader) => CausalLM;

const causalLMBuilders = new Map<string, CausalLMBuilder>();

/** Lets buildCausalLM() make this model_type (VLMs build their language_model from text_config this way). */
export function registerCausalLM(modelType: string, build: CausalLMBuilder): void {
  causalLMBuilders.set(modelType, build);
}

/**
 * Builds a causal LM from a config object by its model_type, with random weights (wrap in skipRandomInit
 * when weights are loaded right after). `file` names the source in errors ("config.json: text_config").
 */
export function buildCausalLM(config: ConfigReader | JsonObject, file = "config.json"): CausalLM {
  const reader = config instanceof ConfigReader ? config : new ConfigReader(config, file);
  const modelType = reader.string("model_type", null);
  const build = modelType === null ? undefined : causalLMBuilders.get(modelType);
  if (!build) {
    throw new Error(`${reader.file}: ${reader.path ? reader.path + "." : ""}model_type ${JSON.stringify(modelType)} is not a supported language model; supported: ${[...causalLMBuilders.keys()].sort().join(", ")}`);
  }
  return build(reader);
}

/** The loader of a plain causal LM folder: build with placeholder weights, then load the safetensors. */
export function causalLMLoader(build: CausalLMBuilder): ArchitectureLoader {
  return ({ dir, config, options }) => {
    const model = skipRandomInit(() => build(config));
    try {
      const loadOptions: LoadWeightsOptions = { dtype: options.dtype, device: options.device, tiedWeights: model.tiedWeights() };
      loadWeights(model, dir, loadOptions);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model;
  };
}

// ---- models from a config alone (random weights, for training from scratch) ----

/** Builds a model of one model_type from its config with random weights. */
export type ConfigBuilder = (config: ConfigReader) => Module;

const configBuilders = new Map<string, ConfigBuilder>();

/** Lets buildFromConfig() make this model_type (causal LMs registered with registerCausalLM need not register). */
export function registerConfigBuilder(modelType: string, build: ConfigBuilder): void {
  configBuilders.set(modelType, build);
}

/**
 * A model built from a config.json (a path, a parsed object or a reader) with random weights, in eval mode,
 * with its generation defaults; `file` names the source in errors.
 *
 *   const model = buildFromConfig("tiny-llava/config.json");   // LlavaForConditionalGeneration, random weights
 */
export function buildFromConfig<M extends Module = Module>(config: string | ConfigReader | JsonObject, options: LoadPretrainedOptions = {}, file = "config.json"): PretrainedModel<M> {
  const reader = typeof config === "string" ? readConfigFile(config) : config instanceof ConfigReader ? config : new ConfigReader(config, file);
  const modelType = reader.string("model_type", null);
  const build = modelType === null ? undefined : configBuilders.get(modelType);
  // Built in float32 on the CPU first, then moved: both must fit.
  checkModelFits(reader, { device: "cpu", memoryLimit: options.memoryLimit });
  if (deviceName(options.device) !== "cpu") checkModelFits(reader, { device: deviceName(options.device), dtype: options.dtype === undefined ? undefined : String(options.dtype), memoryLimit: options.memoryLimit });
  const model = (build ? build(reader) : buildCausalLM(reader)) as PretrainedModel<M>;
  if (options.device !== undefined || (options.dtype !== undefined && options.dtype !== "auto")) {
    model.to({ device: options.device, dtype: options.dtype === "auto" ? undefined : options.dtype });
  }
  model.generationConfig = parseGenerationConfig(reader);
  model.eval();
  return model;
}

function readConfigFile(path: string): ConfigReader {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`${path}: cannot read the model config (${(error as Error).message})`);
  }
  if (!isJsonObject(raw)) throw new Error(`${path}: a model config must be a JSON object`);
  return new ConfigReader(raw, path);
}

/** "cpu" or "cuda" of a device option (the size check only needs the kind). */
function deviceName(device: DeviceLike | undefined): string {
  const name = device === undefined ? "cpu" : String(device);
  return name.startsWith("cuda") ? name : "cpu";
}
