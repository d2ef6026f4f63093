// LoRA adapters in PEFT's files: adapter_config.json (a LoraConfig) and adapter_model.safetensors whose keys
// are "base_model.model.<module path>.lora_A.weight" / ".lora_B.weight" (PEFT drops the adapter name when
// saving) plus, for modules trained in full (modules_to_save), "base_model.model.<parameter path>".
// Paths are transformers' in-memory names (see naming.ts).
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Tensor, noGrad, dispose, readSafetensors, writeSafetensors } from "../torch/index.js";
import { Module, Linear } from "../torch/nn/index.js";
import { writeFileAtomically } from "../torch/files.js";
import { LoRALinear, loraLayers, loraScaling, replaceSubmodule } from "./lora.js";
import { peftNaming, type PeftNaming } from "./naming.js";
import {
  ALL_LINEAR, adaptableModules, adaptationState, fullMatchRegex, matchesTarget, outputLayerPaths,
} from "./adapt.js";

export const ADAPTER_CONFIG_NAME = "adapter_config.json";
export const ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors";
/** What PEFT puts before every module path in a saved adapter (PeftModel.base_model.model). */
export const PEFT_KEY_PREFIX = "base_model.model.";

/** The LoraConfig fields vlmkit reads and writes (PEFT's names; other fields are kept as read). */
export interface PeftLoraConfig {
  peft_type: "LORA";
  task_type: string | null;
  base_model_name_or_path: string | null;
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[] | string;
  exclude_modules: string[] | string | null;
  use_rslora: boolean;
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  modules_to_save: string[] | null;
  layers_to_transform: number[] | number | null;
  layers_pattern: string[] | string | null;
  bias: "none";
  fan_in_fan_out: boolean;
  use_dora: boolean;
  lora_bias: boolean;
  init_lora_weights: boolean | string;
  inference_mode: boolean;
  [field: string]: unknown;
}

export interface LoadedAdapter {
  /** Our paths of the LoRA layers that received weights (new or already there). */
  wrapped: string[];
  /** Our paths of modules whose full weights came from the file (PEFT's modules_to_save). */
  modulesToSave: string[];
  /** Tensors read. */
  loadedKeys: number;
  config: PeftLoraConfig | null;
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
const shapeText = (shape: number[]) => `[${shape.join(", ")}]`;
const LISTED = 20;

function isRecordOf(value: unknown, check: (v: unknown) => boolean): value is Record<string, never> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Object.values(value).every(check);
}
const isStringList = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === "string");
const isPositiveNumber = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v > 0;

// ---- adapter_config.json ----

/** init_lora_weights values whose adapters only work on a modified base model, or that are LoRA variants. */
const UNSUPPORTED_INITS = ["pissa", "olora", "corda", "lora_ga", "loftq", "mica"];
/** Config fields that turn plain LoRA into something else, with why they are refused. */
const UNSUPPORTED_FIELDS: [string, (v: unknown) => boolean, string][] = [
  ["use_dora", (v) => v === true, "DoRA (weight-decomposed LoRA) is not supported"],
  ["lora_bias", (v) => v === true, "trained LoRA biases (lora_B with bias) are not supported"],
  ["fan_in_fan_out", (v) => v === true, "Conv1D-style (fan_in, fan_out) weights are not supported"],
  ["use_qalora", (v) => v === true, "QALoRA is not supported"],
  ["target_parameters", (v) => Array.isArray(v) && v.length > 0, "LoRA on bare parameters (target_parameters) is not supported"],
  ["layer_replication", (v) => v != null, "layer replication is not supported"],
  ["trainable_token_indices", (v) => v != null, "trainable token indices are not supported"],
  ["alora_invocation_tokens", (v) => v != null, "activated LoRA (aLoRA) is not supported"],
  ["use_bdlora", (v) => v != null && v !== false, "block-diagonal LoRA is not supported"],
  ["arrow_config", (v) => v != null, "Arrow routing is not supported"],
  ["velora_config", (v) => v != null, "VeLoRA is not supported"],
  ["kasa_config", (v) => v != null, "KaSA is not supported"],
  ["monteclora_config", (v) => v != null, "MonteCLoRA is not supported"],
  ["megatron_config", (v) => v != null, "Megatron parallel layers are not supported"],
];

/**
 * Checks a parsed adapter_config.json and fills PEFT's defaults. Errors name the file and the field: a
 * non-LoRA peft_type, DoRA and the other LoRA variants, trained biases, inits that need a modified base
 * model (PiSSA, OLoRA, CorDA, LoftQ: convert them in PEFT first) and malformed values.
 */
export function parseAdapterConfig(raw: unknown, file: string): PeftLoraConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${file}: must hold a JSON object (a PEFT LoraConfig)`);
  const c = raw as Record<string, unknown>;
  const fail = (field: string, message: string) => new Error(`${file}: ${field} ${message}`);
  if (c.peft_type !== "LORA") {
    throw fail("peft_type", `is ${JSON.stringify(c.peft_type)}; vlmkit loads LoRA adapters only (peft_type "LORA")`);
  }
  for (const [field, isSet, why] of UNSUPPORTED_FIELDS) {
    if (isSet(c[field])) throw fail(field, `is ${JSON.stringify(c[field])}: ${why}; vlmkit loads plain LoRA adapters`);
  }
  const bias = c.bias ?? "none";
  if (bias !== "none") throw fail("bias", `is ${JSON.stringify(bias)}: adapters that train the base layers' biases are not supported (bias must be "none")`);
  const initWeights = c.init_lora_weights ?? true;
  if (typeof initWeights === "string" && UNSUPPORTED_INITS.some((name) => initWeights.toLowerCase().startsWith(name))) {
    throw fail("init_lora_weights", `is ${JSON.stringify(initWeights)}: such an adapter only works on the modified base model it was made with; ` +
      "convert it in PEFT (save_pretrained(..., path_initial_model_for_weight_conversion=...)) to a plain LoRA adapter first");
  }
  if (!Number.isInteger(c.r) || (c.r as number) <= 0) throw fail("r", `must be a positive integer, got ${JSON.stringify(c.r)}`);
  const alpha = c.lora_alpha ?? 8;
  if (!isPositiveNumber(alpha)) throw fail("lora_alpha", `must be a positive number, got ${JSON.stringify(c.lora_alpha)}`);
  const dropout = c.lora_dropout ?? 0;
  if (!(typeof dropout === "number" && dropout >= 0 && dropout < 1)) throw fail("lora_dropout", `must be a number in [0, 1), got ${JSON.stringify(dropout)}`);
  const targets = c.target_modules;
  if (!(typeof targets === "string" || isStringList(targets))) {
    throw fail("target_modules", `must be a list of module names or a regex string, got ${JSON.stringify(targets)}`);
  }
  if (typeof targets === "string" && targets.toLowerCase() !== ALL_LINEAR) fullMatchRegex(targets, `${file}: target_modules`);
  const exclude = c.exclude_modules ?? null;
  if (!(exclude === null || typeof exclude === "string" || isStringList(exclude))) throw fail("exclude_modules", `must be a list, a regex string or null, got ${JSON.stringify(exclude)}`);
  const modulesToSave = c.modules_to_save ?? null;
  if (!(modulesToSave === null || isStringList(modulesToSave))) throw fail("modules_to_save", `must be a list of module names or null, got ${JSON.stringify(modulesToSave)}`);
  const rankPattern = c.rank_pattern ?? {};
  if (!isRecordOf(rankPattern, (v) => Number.isInteger(v) && (v as number) > 0)) throw fail("rank_pattern", `must map module patterns to positive integer ranks, got ${JSON.stringify(rankPattern)}`);
  const alphaPattern = c.alpha_pattern ?? {};
  if (!isRecordOf(alphaPattern, isPositiveNumber)) throw fail("alpha_pattern", `must map module patterns to positive alphas, got ${JSON.stringify(alphaPattern)}`);
  const layers = c.layers_to_transform ?? null;
  if (!(layers === null || Number.isInteger(layers) || (Array.isArray(layers) && layers.every((v) => Number.isInteger(v))))) {
    throw fail("layers_to_transform", `must be a layer index, a list of them or null, got ${JSON.stringify(layers)}`);
  }
  const layersPattern = c.layers_pattern ?? null;
  if (!(layersPattern === null || typeof layersPattern === "string" || isStringList(layersPattern))) throw fail("layers_pattern", `must be a string, a list or null, got ${JSON.stringify(layersPattern)}`);
  return {
    ...c,
    peft_type: "LORA",
    task_type: typeof c.task_type === "string" ? c.task_type : null,
    base_model_name_or_path: typeof c.base_model_name_or_path === "string" ? c.base_model_name_or_path : null,
    r: c.r as number,
    lora_alpha: alpha as number,
    lora_dropout: dropout,
    target_modules: targets,
    exclude_modules: exclude,
    use_rslora: c.use_rslora === true,
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
    modules_to_save: modulesToSave,
    layers_to_transform: layers as number[] | number | null,
    layers_pattern: layersPattern,
    bias: "none",
    fan_in_fan_out: false,
    use_dora: false,
    lora_bias: false,
    init_lora_weights: initWeights as boolean | string,
    inference_mode: c.inference_mode !== false,
  };
}

/** Reads and checks an adapter_config.json (see parseAdapterConfig). */
export function readAdapterConfig(file: string): PeftLoraConfig {
  if (!existsSync(file)) throw new Error(`${file} is missing: a PEFT adapter folder holds ${ADAPTER_CONFIG_NAME} and ${ADAPTER_WEIGHTS_NAME}`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  return parseAdapterConfig(raw, file);
}

// ---- PEFT's matching rules, on PEFT's paths ----

/** PEFT's rank_pattern / alpha_pattern lookup: the first key that matches the end of the path (get_pattern_key). */
export function patternValue(pattern: Record<string, number>, peftPath: string, fallback: number): number {
  for (const [key, value] of Object.entries(pattern)) {
    if (fullMatchRegex(`(?:.*\\.)?(?:${key})`, "rank_pattern / alpha_pattern").test(peftPath)) return value;
  }
  return fallback;
}

/** The layer index PEFT's layers_to_transform reads from a path, or null. */
function layerIndex(peftPath: string, layersPattern: string[] | string | null): number | null {
  const patterns = layersPattern === null || layersPattern.length === 0 ? [null] : typeof layersPattern === "string" ? [layersPattern] : layersPattern;
  for (const pattern of patterns) {
    const found = new RegExp(pattern === null ? "^.*?\\.[^.]*\\.(\\d+)\\." : `^.*?\\.${pattern}\\.(\\d+)\\.`).exec(peftPath);
    if (found) return Number(found[1]);
  }
  return null;
}

/** Whether PEFT's modules_to_save (which adapters never touch) covers a path. */
function inModulesToSave(peftPath: string, modulesToSave: string[] | null): boolean {
  // Python's re.match(rf"(^|.*\.){m}($|\..*)", key): anchored at the start, and the tail reaches the end.
  return (modulesToSave ?? []).some((m) => fullMatchRegex(`(?:.*\\.)?(?:${m})(?:\\..*)?`, "modules_to_save").test(peftPath));
}

/**
 * Whether PEFT would put a LoRA layer on the Linear layer at peftPath under this config
 * (check_target_module_exists: exclude_modules, modules_to_save, target_modules, layers_to_transform).
 */
export function peftSelects(config: Pick<PeftLoraConfig, "target_modules" | "exclude_modules" | "modules_to_save" | "layers_to_transform" | "layers_pattern">, peftPath: string, outputLayers: string[] = []): boolean {
  const exclude = config.exclude_modules;
  if (exclude !== null && exclude !== undefined) {
    const excluded = typeof exclude === "string" ? fullMatchRegex(exclude, "exclude_modules").test(peftPath) : exclude.includes(peftPath) || exclude.some((e) => peftPath.endsWith("." + e));
    if (excluded) return false;
  }
  if (inModulesToSave(peftPath, config.modules_to_save)) return false;
  const targets = config.target_modules;
  if (typeof targets === "string") {
    if (targets.toLowerCase() === ALL_LINEAR) return !outputLayers.includes(peftPath);
    return fullMatchRegex(targets).test(peftPath);
  }
  if (targets.includes(peftPath)) return true;
  if (!targets.some((name) => peftPath.endsWith("." + name))) return false;
  const layers = config.layers_to_transform;
  if (layers === null || layers === undefined || (Array.isArray(layers) && layers.length === 0)) return true;
  const index = layerIndex(peftPath, config.layers_pattern ?? null);
  if (index === null) return false;
  return typeof layers === "number" ? index === layers : layers.includes(index);
}

// ---- saving ----

function mostCommon<T>(values: T[]): T {
  const counts = new Map<T, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best = values[0];
  for (const [v, n] of counts) if (n > counts.get(best)!) best = v;
  return best;
}

/** Modules trained in full that go into the adapter as modules_to_save (our paths; "" becomes its children). */
function savedFullModules(model: Module): string[] {
  const state = adaptationState(model);
  if (state.rootParameters.length > 0) {
    throw new Error(
      `saveAdapter: ${state.rootParameters.join(", ")} ${state.rootParameters.length === 1 ? "is a parameter" : "are parameters"} of the model root trained in full; ` +
        "PEFT's modules_to_save holds whole submodules only. Freeze the head or save its weights separately.",
    );
  }
  const paths = state.fullModules.flatMap((path) => (path === "" ? model.namedChildren().map(([name]) => name) : [path]));
  for (const path of paths) {
    const inside = loraLayers(model).filter(([p]) => p === path || p.startsWith(path + "."));
    if (inside.length > 0) {
      throw new Error(`saveAdapter: ${path} is trained in full but holds LoRA layers (${inside.slice(0, 3).map(([p]) => p).join(", ")}); PEFT cannot store both. Merge them first: removeAdapters(model, { merge: true }).`);
    }
  }
  return paths;
}

/**
 * The adapter's tensors under PEFT's key names: lora_A / lora_B of every LoRA layer, and every parameter of
 * the modules trained in full. The values are the live tensors (for checkpoints; do not dispose them).
 */
export function adapterStateDict(model: Module): Map<string, Tensor> {
  const naming = peftNaming(model);
  const tensors = new Map<string, Tensor>();
  for (const [path, layer] of loraLayers(model)) {
    const peftPath = naming.toPeft(path);
    tensors.set(`${PEFT_KEY_PREFIX}${peftPath}.lora_A.weight`, layer.lora_A.weight);
    tensors.set(`${PEFT_KEY_PREFIX}${peftPath}.lora_B.weight`, layer.lora_B.weight);
  }
  for (const path of savedFullModules(model)) {
    for (const [name, t] of model.getSubmodule(path).stateDict(path)) tensors.set(`${PEFT_KEY_PREFIX}${naming.toPeft(name)}`, t);
  }
  return tensors;
}

/**
 * PEFT's target_modules for exactly the wrapped layers: the list of their names when it selects nothing else,
 * else a regex with layer indices generalised (model\.language_model\.layers\.\d+\.self_attn\.q_proj|...)
 * when that is exact, else the alternation of the paths themselves.
 */
function targetModulesFor(model: Module, naming: PeftNaming, wrapped: Set<string>, modulesToSave: string[]): string[] | string {
  const candidates = adaptableModules(model).map(([path, m]) => ({ peftPath: naming.toPeft(path), linear: m instanceof Linear || m instanceof LoRALinear }));
  const selectsExactly = (targets: string[] | string) =>
    candidates.every(({ peftPath, linear }) => {
      if (inModulesToSave(peftPath, modulesToSave)) return !wrapped.has(peftPath);
      const selected = matchesTarget(peftPath, targets);
      return selected === wrapped.has(peftPath) && (!selected || linear);
    });
  const paths = [...wrapped].sort();
  const names = [...new Set(paths.map((p) => p.slice(p.lastIndexOf(".") + 1)))].sort();
  if (selectsExactly(names)) return names;
  const generalised = [...new Set(paths.map((p) => escapeRegex(p).replace(/\\\.\d+(?=\\\.|$)/g, "\\.\\d+")))].sort().join("|");
  if (selectsExactly(generalised)) return generalised;
  return paths.map(escapeRegex).join("|");
}

/**
 * The adapter_config.json that saveAdapter writes. One PEFT config holds one r, alpha, dropout and
 * use_rslora: ranks and alphas of the layers that differ go to rank_pattern / alpha_pattern (exact paths),
 * and a layer whose rslora setting differs from the adapter's gets the alpha that gives it its scaling.
 */
export function adapterConfig(model: Module, baseModelPath?: string | null): PeftLoraConfig {
  const naming = peftNaming(model);
  const layers = loraLayers(model);
  const modulesToSave = savedFullModules(model).map((path) => naming.toPeft(path));
  const rslora = layers.filter(([, l]) => l.rslora).length * 2 > layers.length;
  const alphaOf = (l: LoRALinear) => (l.rslora === rslora ? l.alpha : l.scaling * (rslora ? Math.sqrt(l.r) : l.r));
  const r = layers.length > 0 ? mostCommon(layers.map(([, l]) => l.r)) : 8;
  const alpha = layers.length > 0 ? mostCommon(layers.map(([, l]) => alphaOf(l))) : 8;
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  for (const [path, layer] of layers) {
    const key = escapeRegex(naming.toPeft(path));
    if (layer.r !== r) rankPattern[key] = layer.r;
    if (alphaOf(layer) !== alpha) alphaPattern[key] = alphaOf(layer);
  }
  const wrapped = new Set(layers.map(([path]) => naming.toPeft(path)));
  const state = adaptationState(model);
  return {
    alpha_pattern: alphaPattern,
    base_model_name_or_path: baseModelPath ?? state.baseModelPath ?? null,
    bias: "none",
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: alpha,
    lora_bias: false,
    lora_dropout: layers.length > 0 ? mostCommon(layers.map(([, l]) => l.dropout)) : 0,
    modules_to_save: modulesToSave.length > 0 ? modulesToSave : null,
    peft_type: "LORA",
    r,
    rank_pattern: rankPattern,
    target_modules: layers.length > 0 ? targetModulesFor(model, naming, wrapped, modulesToSave) : [],
    task_type: outputLayerPaths(model).length > 0 ? "CAUSAL_LM" : null,
    use_dora: false,
    use_rslora: rslora,
  };
}


/**
 * Writes the model's adapter as a PEFT adapter folder: adapter_model.safetensors (LoRA weights and the
 * weights of components trained in full, under PEFT's key names) and adapter_config.json. Each file is
 * replaced atomically; other files in dir are left alone. PEFT loads it with PeftModel.from_pretrained.
 */
export function saveAdapter(model: Module, dir: string, baseModelPath?: string): void {
  const config = adapterConfig(model, baseModelPath);
  const tensors = adapterStateDict(model);
  if (tensors.size === 0) throw new Error(`saveAdapter: ${model.constructor.name} has no LoRA layers and no component trained in full; run adaptModel first`);
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`saveAdapter: ${dir} exists and is not a folder`);
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, ADAPTER_WEIGHTS_NAME), tensors, { format: "pt" });
  // Sorted keys, as PEFT writes the file (json.dumps(sort_keys=True)).
  const sorted = Object.fromEntries(Object.keys(config).sort().map((key) => [key, config[key]]));
  writeFileAtomically(join(dir, ADAPTER_CONFIG_NAME), JSON.stringify(sorted, null, 2) + "\n");
}

// ---- loading ----

interface LoraEntry {
  peftPath: string;
  a?: [string, Tensor];
  b?: [string, Tensor];
}

export interface LoadAdapterStateOptions {
  /** The adapter's config: LoRA layers are created where missing, with its r / alpha / dropout / rslora. Without one, every LoRA tensor must find a LoRA layer already in place. */
  config?: PeftLoraConfig | null;
  /** Names the tensors' origin in errors (the file). */
  source?: string;
  /** Names the config's origin in errors. */
  configSource?: string;
}

/**
 * Loads adapter tensors under PEFT's key names (as adapterStateDict gives them or a PEFT file holds them)
 * into model. Everything is checked before anything changes: each LoRA tensor needs a Linear layer of the
 * right shape and its partner tensor, the rank must be the config's, every layer the config targets needs
 * its tensors, and every other tensor must be a parameter of a module in modules_to_save. Errors list the
 * keys. New LoRA layers are frozen (PEFT's inference default); adaptModel makes them trainable.
 */
export function loadAdapterStateDict(model: Module, tensors: Map<string, Tensor>, options: LoadAdapterStateOptions = {}): LoadedAdapter {
  const naming = peftNaming(model);
  const config = options.config ?? null;
  const source = options.source ?? "the adapter tensors";
  const configSource = options.configSource ?? ADAPTER_CONFIG_NAME;
  const problems: string[] = [];
  const unexpected: string[] = [];

  // Sort the keys: LoRA pairs by module, everything else as full parameters.
  const lora = new Map<string, LoraEntry>();
  const others: [string, string, Tensor][] = [];
  for (const [key, t] of tensors) {
    const bare = key.startsWith(PEFT_KEY_PREFIX) ? key.slice(PEFT_KEY_PREFIX.length) : key;
    const found = /^(.+)\.lora_(A|B)(?:\.[^.]+)?\.weight$/.exec(bare);
    if (found) {
      const path = naming.fromPeft(found[1]);
      const entry = lora.get(path) ?? { peftPath: found[1] };
      const side = found[2] === "A" ? "a" : "b";
      if (entry[side]) problems.push(`${key}: a second lora_${found[2]} for ${found[1]} (after ${entry[side]![0]}); the file holds more than one adapter`);
      entry[side] = [key, t];
      lora.set(path, entry);
    } else if (/\.lora_magnitude_vector(\.|$)/.test(bare)) {
      problems.push(`${key}: a DoRA magnitude vector; DoRA adapters are not supported`);
    } else if (/\.lora_embedding_[AB](\.|$)/.test(bare)) {
      problems.push(`${key}: LoRA on an embedding layer is not supported (only Linear layers)`);
    } else if (/(^|\.)lora_[A-Za-z]/.test(bare)) {
      problems.push(`${key}: not a plain LoRA weight (only lora_A.weight and lora_B.weight are supported)`);
    } else {
      others.push([key, naming.fromPeft(bare), t]);
    }
  }

  // Each LoRA pair: its layer, shapes, rank and scaling.
  interface Planned { path: string; peftPath: string; module: Linear | LoRALinear; a: Tensor; b: Tensor; r: number; alpha: number; rslora: boolean; dropout: number }
  const planned: Planned[] = [];
  for (const [path, entry] of lora) {
    const anyKey = (entry.a ?? entry.b)![0];
    let module: Module;
    try {
      module = model.getSubmodule(path);
    } catch {
      unexpected.push(`${anyKey} (no module ${path} in the model)`);
      continue;
    }
    if (!(module instanceof Linear || module instanceof LoRALinear)) {
      problems.push(`${anyKey}: ${path} is a ${module.constructor.name}; LoRA is supported on Linear layers only`);
      continue;
    }
    if (!entry.a || !entry.b) {
      const missingSide = entry.a ? "lora_B" : "lora_A";
      problems.push(`missing ${PEFT_KEY_PREFIX}${entry.peftPath}.${missingSide}.weight (its partner ${anyKey} is there)`);
      continue;
    }
    const base = module instanceof LoRALinear ? module.base_layer : module;
    const [aKey, a] = entry.a;
    const [bKey, b] = entry.b;
    const r = a.shape[0];
    if (a.ndim !== 2 || a.shape[1] !== base.inFeatures) problems.push(`${aKey}: shape ${shapeText(a.shape)}, but ${path} takes ${base.inFeatures} inputs: lora_A must be [r, ${base.inFeatures}]`);
    if (b.ndim !== 2 || b.shape[0] !== base.outFeatures || b.shape[1] !== r) problems.push(`${bKey}: shape ${shapeText(b.shape)}, expected [${base.outFeatures}, ${r}] (${path} has ${base.outFeatures} outputs; lora_A has rank ${r})`);
    let alpha: number;
    let rslora: boolean;
    let dropout: number;
    if (config) {
      const wantedR = patternValue(config.rank_pattern, entry.peftPath, config.r);
      if (r !== wantedR) problems.push(`${aKey}: rank ${r}, but ${configSource} gives ${entry.peftPath} r=${wantedR}`);
      alpha = patternValue(config.alpha_pattern, entry.peftPath, config.lora_alpha);
      rslora = config.use_rslora;
      dropout = config.lora_dropout;
      if (module instanceof LoRALinear && (module.r !== r || module.scaling !== loraScaling({ r, alpha, rslora }))) {
        problems.push(`${path} already has a different LoRA adapter (r=${module.r}, scaling ${module.scaling}); remove it first with removeAdapters(model)`);
      }
    } else {
      if (!(module instanceof LoRALinear)) {
        problems.push(`${aKey}: ${path} has no LoRA layer to load into; load the adapter folder with loadAdapter (it has the config), or run adaptModel first`);
        continue;
      }
      if (module.r !== r) problems.push(`${aKey}: rank ${r}, but the LoRA layer at ${path} has r=${module.r}`);
      ({ alpha, rslora, dropout } = module);
    }
    planned.push({ path, peftPath: entry.peftPath, module, a, b, r, alpha, rslora, dropout });
  }

  const treeOrder = new Map(model.namedModules().map(([path], i) => [path, i]));
  planned.sort((x, y) => treeOrder.get(x.path)! - treeOrder.get(y.path)!);

  // Layers the adapter should cover but the tensors miss; tensors for layers the config does not target.
  const adaptable = adaptableModules(model).filter(([, m]) => m instanceof Linear || m instanceof LoRALinear);
  if (config) {
    const outputs = outputLayerPaths(model).map((p) => naming.toPeft(p));
    const selected = adaptable.filter(([path]) => peftSelects(config, naming.toPeft(path), outputs));
    // A regex written for another spelling of the paths (an old LLaVA layout) selects nothing here: the tensors then decide.
    if (selected.length > 0 || typeof config.target_modules !== "string") {
      for (const [path] of selected) {
        if (!lora.has(path)) problems.push(`missing ${PEFT_KEY_PREFIX}${naming.toPeft(path)}.lora_A.weight and .lora_B.weight (target_modules selects ${naming.toPeft(path)})`);
      }
      const selectedPaths = new Set(selected.map(([path]) => path));
      for (const p of planned) if (!selectedPaths.has(p.path)) unexpected.push(`${PEFT_KEY_PREFIX}${p.peftPath}.lora_A.weight (target_modules ${JSON.stringify(config.target_modules)} does not select ${p.peftPath})`);
    }
  } else {
    for (const [path, layer] of loraLayers(model)) {
      if (!lora.has(path)) problems.push(`missing ${PEFT_KEY_PREFIX}${naming.toPeft(path)}.lora_A.weight and .lora_B.weight (the model has a LoRA layer at ${path}, r=${layer.r})`);
    }
  }

  // Full weights (modules_to_save): each must be a parameter or buffer of the model, of the right shape.
  const state = model.stateDict();
  const fullTargets: [Tensor, Tensor][] = [];
  for (const [key, path, t] of others) {
    let target = state.get(path);
    if (!target) {
      // A module saved in full may hold a LoRA layer here: its weight is the base layer's.
      const dot = path.lastIndexOf(".");
      target = state.get(`${path.slice(0, dot)}.base_layer.${path.slice(dot + 1)}`);
    }
    if (!target) {
      unexpected.push(`${key}${path !== key ? ` (as ${path})` : ""}: the model has no such parameter`);
      continue;
    }
    if (config && !inModulesToSave(naming.toPeft(path), config.modules_to_save)) {
      unexpected.push(`${key}: neither a LoRA weight nor under modules_to_save ${JSON.stringify(config.modules_to_save)}`);
      continue;
    }
    if (target.shape.join(",") !== t.shape.join(",")) problems.push(`${key}: shape ${shapeText(t.shape)}, the model's ${path} is ${shapeText(target.shape)}`);
    fullTargets.push([target, t]);
  }
  const modulesToSave: string[] = [];
  if (config?.modules_to_save) {
    const given = new Set(others.map(([, path]) => path));
    for (const [path, m] of adaptableModules(model)) {
      const peftPath = naming.toPeft(path);
      if (!config.modules_to_save.some((name) => peftPath.endsWith(name))) continue;
      if (modulesToSave.some((outer) => path.startsWith(outer + "."))) continue;
      modulesToSave.push(path);
      for (const [name] of m.namedParameters(path)) {
        const plain = name.replace(/\.base_layer\.(?=[^.]+$)/, ".");
        if (!given.has(name) && !given.has(plain)) problems.push(`missing ${PEFT_KEY_PREFIX}${naming.toPeft(plain)} (modules_to_save ${JSON.stringify(config.modules_to_save)} covers ${peftPath})`);
      }
    }
  }

  if (unexpected.length > 0) problems.push(`unexpected keys (${unexpected.length}): ${unexpected.slice(0, 8).join("; ")}${unexpected.length > 8 ? "; ..." : ""}`);
  if (problems.length > 0) {
    throw new Error(
      `cannot load ${source} into ${model.constructor.name}:\n  ${problems.slice(0, LISTED).join("\n  ")}` +
        (problems.length > LISTED ? `\n  ... (${problems.length - LISTED} more)` : "") +
        "\nFix: load the adapter into the base model it was trained on (same architecture and sizes).",
    );
  }

  // Nothing changed so far; now apply.
  noGrad(() => {
    for (const p of planned) {
      let layer: LoRALinear;
      if (p.module instanceof LoRALinear) {
        layer = p.module;
      } else {
        layer = new LoRALinear(p.module, { r: p.r, alpha: p.alpha, rslora: p.rslora, dropout: p.dropout });
        layer.lora_A.weight.requiresGrad = false;
        layer.lora_B.weight.requiresGrad = false;
        replaceSubmodule(model, p.path, layer);
      }
      layer.lora_A.weight.copy_(p.a);
      layer.lora_B.weight.copy_(p.b);
    }
    for (const [target, value] of fullTargets) target.copy_(value);
  });
  if (config) {
    const adaptation = adaptationState(model);
    adaptation.fullModules = modulesToSave;
    adaptation.baseModelPath = config.base_model_name_or_path;
  }
  return { wrapped: planned.map((p) => p.path), modulesToSave, loadedKeys: tensors.size, config };
}

/**
 * Loads a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors, as PEFT's
 * save_pretrained writes it) into model: LoRA layers are put where the file has weights, with the config's
 * r / alpha / dropout / rslora (rank_pattern and alpha_pattern honoured), and modules_to_save weights are
 * copied into the model. Older LLaVA layouts (language_model.model.*) are renamed. Nothing changes unless
 * everything matches; the error lists missing and unexpected keys and wrong shapes, naming the file.
 */
export async function loadAdapter(model: Module, dir: string): Promise<LoadedAdapter> {
  if (!existsSync(dir)) throw new Error(`loadAdapter: adapter folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new Error(`loadAdapter: ${dir} is not a folder; pass the folder that holds ${ADAPTER_CONFIG_NAME}`);
  const configFile = join(dir, ADAPTER_CONFIG_NAME);
  const config = readAdapterConfig(configFile);
  const weightsFile = join(dir, ADAPTER_WEIGHTS_NAME);
  if (!existsSync(weightsFile)) {
    const pickled = existsSync(join(dir, "adapter_model.bin"));
    throw new Error(
      `${weightsFile} is missing` +
        (pickled ? ": the folder has adapter_model.bin (pickle), which vlmkit never reads; re-save it with PEFT's save_pretrained(..., safe_serialization=True)" : ""),
    );
  }
  const tensors = readSafetensors(weightsFile);
  try {
    return loadAdapterStateDict(model, tensors, { config, source: weightsFile, configSource: configFile });
  } finally {
    dispose([...tensors.values()]);
  }
}
