// Adaptation per component (vision tower, projector, language model): frozen, LoRA or full; and LoRA adapters
// saved and loaded in PEFT's format (adapter_config.json + adapter_model.safetensors).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tensor, readSafetensors, writeSafetensors, noGrad } from "../torch/index.js";
import { Module, Linear, Parameter } from "../torch/nn/index.js";
import { LoRALinear, loraLayers, replaceSubmodule, type LoRAOptions } from "./lora.js";

export type Component = "vision" | "projector" | "language";
export const COMPONENTS: Component[] = ["vision", "projector", "language"];

export interface ComponentAdaptation {
  mode: "frozen" | "lora" | "full";
  r?: number;
  alpha?: number;
  dropout?: number;
  rslora?: boolean;
  /** Module names ("q_proj": a path ending in it) or one regular expression matched against the whole path. */
  targetModules?: string[] | string;
}

export type AdaptationPlan = Partial<Record<Component, ComponentAdaptation>>;

const has = (model: Module, path: string) => {
  try {
    model.getSubmodule(path);
    return true;
  } catch {
    return false;
  }
};

/**
 * Where each component lives in the model's tree. LLaVA-style VLMs: model.vision_tower,
 * model.multi_modal_projector, model.language_model + lm_head; a causal LM is all language; CLIP/SigLIP
 * vision towers are all vision.
 */
export function componentPrefixes(model: Module): Record<Component, string[]> {
  if (has(model, "model.vision_tower")) {
    return { vision: ["model.vision_tower"], projector: ["model.multi_modal_projector"], language: ["model.language_model", "lm_head"] };
  }
  if (has(model, "vision_model") && has(model, "text_model")) return { vision: ["vision_model", "visual_projection"], projector: [], language: ["text_model", "text_projection"] };
  if (has(model, "vision_model")) return { vision: ["vision_model"], projector: [], language: [] };
  return { vision: [], projector: [], language: [""] };
}

const under = (path: string, prefix: string) => prefix === "" || path === prefix || path.startsWith(prefix + ".");

/** PEFT's target_modules rule: a list matches a path equal to or ending in ".name"; a string must fullmatch the path. */
export function matchesTarget(path: string, targets: string[] | string): boolean {
  if (typeof targets === "string") return new RegExp(`^(?:${targets})$`).test(path);
  return targets.some((name) => path === name || path.endsWith("." + name));
}

export interface AdaptResult {
  /** Trainable parameters after adaptation, by name. */
  trainable: [string, Parameter][];
  /** LoRA-wrapped module paths per component. */
  wrapped: Record<Component, string[]>;
  /** PEFT's print_trainable_parameters line. */
  report: string;
}

/** "trainable params: X || all params: Y || trainable%: Z", as PEFT prints it. */
export function trainableReport(model: Module): string {
  const all = model.numParameters();
  const trainable = model.numParameters(true);
  return `trainable params: ${trainable.toLocaleString("en-US")} || all params: ${all.toLocaleString("en-US")} || trainable%: ${((100 * trainable) / Math.max(1, all)).toFixed(4)}`;
}

/**
 * Freezes the whole model, then applies the plan per component: "full" unfreezes the component, "lora" wraps
 * the Linear layers inside the component whose paths match targetModules (never outside it, so a language
 * plan cannot pick up the vision tower's q_proj). Logs what was matched and the trainable-parameter line.
 */
export function adaptModel(model: Module, plan: AdaptationPlan, log: (line: string) => void = () => {}): AdaptResult {
  for (const key of Object.keys(plan)) {
    if (!COMPONENTS.includes(key as Component)) throw new Error(`unknown component '${key}' in the adaptation plan (components: ${COMPONENTS.join(", ")})`);
  }
  const prefixes = componentPrefixes(model);
  model.freeze();
  const wrapped: Record<Component, string[]> = { vision: [], projector: [], language: [] };
  for (const component of COMPONENTS) {
    const adaptation = plan[component];
    if (!adaptation || adaptation.mode === "frozen") continue;
    const roots = prefixes[component];
    if (roots.length === 0) throw new Error(`this ${model.constructor.name} has no ${component} component to adapt`);
    if (adaptation.mode === "full") {
      for (const [name, p] of model.namedParameters()) if (roots.some((root) => under(name, root))) p.requiresGrad = true;
      log(`${component}: full fine-tuning`);
      continue;
    }
    if (adaptation.mode !== "lora") throw new Error(`${component}.mode must be frozen, lora or full, got '${adaptation.mode}'`);
    const targets = adaptation.targetModules ?? ["q_proj", "v_proj"];
    const options: LoRAOptions = { r: adaptation.r ?? 8, alpha: adaptation.alpha ?? 16, dropout: adaptation.dropout ?? 0, rslora: adaptation.rslora };
    const matches = model
      .namedModules()
      .filter(([path, m]) => m instanceof Linear && roots.some((root) => under(path, root)) && matchesTarget(path, targets));
    if (matches.length === 0) {
      throw new Error(`${component}: targetModules ${JSON.stringify(targets)} match no Linear layer under ${roots.map((r) => r || "(root)").join(", ")}`);
    }
    for (const [path, m] of matches) {
      replaceSubmodule(model, path, new LoRALinear(m as Linear, options));
      wrapped[component].push(path);
    }
    const shown = matches.slice(0, 4).map(([path]) => path);
    log(`${component}: LoRA r=${options.r} alpha=${options.alpha}${options.rslora ? " (rsLoRA)" : ""} on ${matches.length} layers: ${shown.join(", ")}${matches.length > shown.length ? ", ..." : ""}`);
  }
  const report = trainableReport(model);
  log(report);
  return { trainable: model.namedParameters().filter(([, p]) => p.requiresGrad), wrapped, report };
}

// ---- PEFT files ----

const PEFT_PREFIX = "base_model.model.";

function leafName(path: string): string {
  return path.slice(path.lastIndexOf(".") + 1);
}

const escapeRegex = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * PEFT's target_modules for exactly these wrapped paths: the plain list of layer names when it selects nothing
 * else in the model, else a regex (fullmatched by PEFT) scoped to the components that hold them, else an
 * alternation of the paths themselves.
 */
function targetModulesFor(model: Module, wrapped: string[]): string[] | string {
  const linearPaths = model.namedModules().filter(([, m]) => m instanceof Linear || m instanceof LoRALinear).map(([path]) => path);
  const selects = (targets: string[] | string) => {
    const chosen = linearPaths.filter((path) => matchesTarget(path, targets));
    return chosen.length === wrapped.length && chosen.every((path) => wrapped.includes(path));
  };
  const names = [...new Set(wrapped.map(leafName))].sort();
  if (selects(names)) return names;
  const roots = [...new Set(Object.values(componentPrefixes(model)).flat())].filter((root) => root !== "" && wrapped.some((path) => path.startsWith(root + ".")));
  const scoped = `(?:${roots.map(escapeRegex).join("|")})\\..*\\.(?:${names.map(escapeRegex).join("|")})`;
  if (roots.length > 0 && selects(scoped)) return scoped;
  return wrapped.map(escapeRegex).join("|");
}

/**
 * Writes the model's LoRA layers as a PEFT adapter: adapter_config.json (ranks and alphas that differ from the
 * most common ones go to rank_pattern / alpha_pattern, as PEFT does) and adapter_model.safetensors with PEFT's
 * key names. The folder is written whole or not at all.
 */
export function saveAdapter(model: Module, dir: string, options: { baseModelPath?: string; taskType?: string } = {}): void {
  const layers = loraLayers(model);
  if (layers.length === 0) throw new Error("saveAdapter: the model has no LoRA layers");
  const mostCommon = <T>(values: T[]) => [...values.reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map<T, number>())].sort((a, b) => b[1] - a[1])[0][0];
  const r = mostCommon(layers.map(([, l]) => l.r));
  const alpha = mostCommon(layers.map(([, l]) => l.alpha));
  const rslora = layers.some(([, l]) => l.rslora);
  if (layers.some(([, l]) => l.rslora !== rslora)) throw new Error("saveAdapter: PEFT stores one use_rslora for the whole adapter; these layers mix both");
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  const tensors = new Map<string, Tensor>();
  for (const [path, layer] of layers) {
    if (layer.merged) throw new Error(`saveAdapter: ${path} is merged into its base weight; unmerge it first`);
    if (layer.r !== r) rankPattern[path] = layer.r;
    if (layer.alpha !== alpha) alphaPattern[path] = layer.alpha;
    tensors.set(`${PEFT_PREFIX}${path}.lora_A.weight`, layer.lora_A.weight);
    tensors.set(`${PEFT_PREFIX}${path}.lora_B.weight`, layer.lora_B.weight);
  }
  const dropout = layers[0][1].lora_dropout;
  const config = {
    peft_type: "LORA",
    task_type: options.taskType ?? "CAUSAL_LM",
    base_model_name_or_path: options.baseModelPath ?? null,
    r,
    lora_alpha: alpha,
    lora_dropout: "p" in dropout ? (dropout as { p: number }).p : 0,
    target_modules: targetModulesFor(model, layers.map(([path]) => path)),
    use_rslora: rslora,
    use_dora: false,
    bias: "none",
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    modules_to_save: null,
    layers_to_transform: null,
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
  };
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    writeFileSync(join(staging, "adapter_config.json"), JSON.stringify(config, null, 2) + "\n");
    writeSafetensors(join(staging, "adapter_model.safetensors"), tensors, { format: "pt" });
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

interface PeftLoraConfig {
  peft_type?: string;
  r?: number;
  lora_alpha?: number;
  lora_dropout?: number;
  target_modules?: string[] | string | null;
  use_rslora?: boolean;
  use_dora?: boolean;
  bias?: string;
  fan_in_fan_out?: boolean;
  rank_pattern?: Record<string, number>;
  alpha_pattern?: Record<string, number>;
  layers_to_transform?: unknown;
  modules_to_save?: unknown;
}

/** PEFT's pattern lookup: the first key that the path ends with (as a regex suffix). */
function patternValue(pattern: Record<string, number> | undefined, path: string, fallback: number): number {
  for (const [key, value] of Object.entries(pattern ?? {})) {
    if (new RegExp(`(^|\\.)(?:${key})$`).test(path)) return value;
  }
  return fallback;
}

function readAdapterConfig(file: string): PeftLoraConfig {
  if (!existsSync(file)) throw new Error(`${file} is missing: a PEFT adapter folder holds adapter_config.json and adapter_model.safetensors`);
  let config: PeftLoraConfig;
  try {
    config = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new Error(`${file}: not valid JSON (${(error as Error).message})`);
  }
  const unsupported = (key: string, why: string) => new Error(`${file}: ${key} ${why}; vlmkit loads plain LoRA adapters`);
  if (config.peft_type !== "LORA") throw unsupported("peft_type", `is ${JSON.stringify(config.peft_type)}, not "LORA"`);
  if (config.use_dora) throw unsupported("use_dora", "is true (DoRA is not supported)");
  if (config.bias && config.bias !== "none") throw unsupported("bias", `is "${config.bias}" (trained biases are not supported)`);
  if (config.fan_in_fan_out) throw unsupported("fan_in_fan_out", "is true (Conv1D-style weights are not supported)");
  if (config.layers_to_transform != null) throw unsupported("layers_to_transform", "is set");
  if (config.modules_to_save != null && !(Array.isArray(config.modules_to_save) && config.modules_to_save.length === 0)) throw unsupported("modules_to_save", "is set");
  if (!Number.isInteger(config.r) || (config.r as number) <= 0) throw new Error(`${file}: r must be a positive integer, got ${JSON.stringify(config.r)}`);
  if (!(typeof config.lora_alpha === "number" && config.lora_alpha > 0)) throw new Error(`${file}: lora_alpha must be a positive number, got ${JSON.stringify(config.lora_alpha)}`);
  if (config.target_modules == null) throw new Error(`${file}: target_modules is missing`);
  return config;
}

/**
 * Loads a PEFT LoRA adapter folder into model: wraps every Linear that the config's target_modules match
 * (PEFT's rule) and fills lora_A / lora_B from adapter_model.safetensors. Every wrapped layer must find both
 * weights with the right shapes and every tensor of the file must find its layer, else nothing changes and
 * the error lists what is wrong.
 */
export function loadAdapter(model: Module, dir: string): { wrapped: string[] } {
  const configFile = join(dir, "adapter_config.json");
  const weightsFile = join(dir, "adapter_model.safetensors");
  const config = readAdapterConfig(configFile);
  if (!existsSync(weightsFile)) throw new Error(`${weightsFile} is missing (adapter_model.bin is pickle and is not read)`);
  const weights = readSafetensors(weightsFile);
  try {
    const targets = config.target_modules!;
    const matches = model.namedModules().filter(([path, m]) => (m instanceof Linear || m instanceof LoRALinear) && matchesTarget(path, targets));
    if (matches.length === 0) throw new Error(`${configFile}: target_modules ${JSON.stringify(targets)} match no Linear layer of ${model.constructor.name}`);
    const expected = new Set<string>();
    const problems: string[] = [];
    const plan: { path: string; base: Linear; r: number; alpha: number }[] = [];
    for (const [path, m] of matches) {
      if (m instanceof LoRALinear) {
        problems.push(`${path} already has a LoRA adapter`);
        continue;
      }
      const base = m as Linear;
      const r = patternValue(config.rank_pattern, path, config.r!);
      const alpha = patternValue(config.alpha_pattern, path, config.lora_alpha!);
      for (const [part, shape] of [["lora_A", [r, base.inFeatures]], ["lora_B", [base.outFeatures, r]]] as const) {
        const key = `${PEFT_PREFIX}${path}.${part}.weight`;
        expected.add(key);
        const t = weights.get(key);
        if (!t) problems.push(`missing ${key}`);
        else if (t.shape.join(",") !== shape.join(",")) problems.push(`${key}: file [${t.shape}], model needs [${shape}]`);
      }
      plan.push({ path, base, r, alpha });
    }
    const unexpected = [...weights.keys()].filter((k) => !expected.has(k));
    if (unexpected.length > 0) problems.push(`not in the model (${unexpected.length}): ${unexpected.slice(0, 8).join(", ")}${unexpected.length > 8 ? ", ..." : ""}`);
    if (problems.length > 0) throw new Error(`cannot load ${weightsFile} into ${model.constructor.name}:\n  ${problems.slice(0, 20).join("\n  ")}`);
    for (const { path, base, r, alpha } of plan) {
      const layer = new LoRALinear(base, { r, alpha, dropout: config.lora_dropout ?? 0, rslora: config.use_rslora ?? false });
      noGrad(() => {
        layer.lora_A.weight.copy_(weights.get(`${PEFT_PREFIX}${path}.lora_A.weight`)!);
        layer.lora_B.weight.copy_(weights.get(`${PEFT_PREFIX}${path}.lora_B.weight`)!);
      });
      replaceSubmodule(model, path, layer);
    }
    return { wrapped: plan.map((p) => p.path) };
  } finally {
    for (const t of weights.values()) t.dispose();
  }
}
