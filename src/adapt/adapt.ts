// Adaptation per component: the vision tower, the projector, the language model and a head are each frozen,
// adapted with LoRA, or fully trained. A LoRA target (a layer name or a regex) is matched only inside its
// own component, so a language plan never picks up the vision tower's q_proj.
import { isFloatingDType } from "../torch/index.js";
import { Module, Linear, Parameter } from "../torch/nn/index.js";
import { LoRALinear, loraLayers, loraScaling, replaceSubmodule, type LoRAOptions } from "./lora.js";
import { peftNaming, type PeftNaming } from "./naming.js";

export type Component = "vision" | "projector" | "language" | "head";
export const COMPONENTS: readonly Component[] = ["vision", "projector", "language", "head"];
/** Where the vision tower, projector and language model live (module paths; "" is the whole model). */
export type ComponentPrefixes = Record<Exclude<Component, "head">, string[]>;

export interface ComponentAdaptation {
  mode: "frozen" | "lora" | "full";
  /** LoRA rank (default 8). */
  r?: number;
  /** LoRA alpha (default 16). */
  alpha?: number;
  /** Dropout on the adapter input (default 0). */
  dropout?: number;
  /** scaling alpha / sqrt(r) instead of alpha / r. */
  rslora?: boolean;
  /**
   * Layer names (a module whose path is the name or ends in "." + name, as PEFT's list), one regex that must
   * match a whole path (the full path, or the path inside the component: "layers\\.1\\.self_attn\\.q_proj"),
   * or "all-linear" (every Linear of the component but the LM head). Default: ["q_proj", "v_proj"] for the
   * vision tower and the language model, "all-linear" for the projector and the head.
   */
  targetModules?: string[] | string;
}

export type AdaptationPlan = Partial<Record<Component, ComponentAdaptation>>;

export interface AdaptResult {
  /** Every trainable parameter after adaptation, by name. */
  trainable: [string, Parameter][];
  /** What was done, one line per component, then PEFT's trainable-parameter line (also sent to log). */
  report: string;
  /** PEFT's print_trainable_parameters line alone. */
  trainableLine: string;
  /** LoRA-wrapped module paths per component. */
  wrapped: Record<Component, string[]>;
}

const ADAPTATION_KEYS = new Set(["mode", "r", "alpha", "dropout", "rslora", "targetModules"]);
const DEFAULT_TARGETS: Record<Component, string[] | string> = { vision: ["q_proj", "v_proj"], projector: "all-linear", language: ["q_proj", "v_proj"], head: "all-linear" };
export const ALL_LINEAR = "all-linear";

// ---- components ----

/** A model that says itself where its components are (e.g. a backbone + head wrapper). */
interface DeclaresComponents {
  adaptComponents(): Partial<ComponentPrefixes>;
}
const declaresComponents = (model: Module): model is Module & DeclaresComponents =>
  typeof (model as unknown as Partial<DeclaresComponents>).adaptComponents === "function";

/**
 * Where each component lives in the model's tree, from the Hugging Face layout:
 * - LLaVA-style VLMs: vision model.vision_tower, projector model.multi_modal_projector, language
 *   model.language_model + lm_head (a bare LlavaModel: the same without "model." and lm_head);
 * - a causal LM (Llama, Qwen2): language model + lm_head; a bare decoder: language is the whole model;
 * - CLIP / SigLIP: vision vision_model (+ visual_projection), language text_model (+ text_projection);
 *   a vision tower alone (CLIPVisionModel, SiglipVisionModel) is all vision.
 * Parameters outside every prefix (CLIP's logit_scale) belong to the head. A model can also declare its
 * components with an adaptComponents() method returning these prefixes.
 */
export function componentPrefixes(model: Module): ComponentPrefixes {
  const present = (...paths: string[]) => paths.filter((p) => model.hasSubmodule(p));
  if (declaresComponents(model)) {
    const declared = model.adaptComponents();
    return { vision: declared.vision ?? [], projector: declared.projector ?? [], language: declared.language ?? [] };
  }
  if (model.hasSubmodule("model.vision_tower") && model.hasSubmodule("model.language_model")) {
    return { vision: ["model.vision_tower"], projector: present("model.multi_modal_projector"), language: present("model.language_model", "lm_head") };
  }
  if (model.hasSubmodule("vision_tower") && model.hasSubmodule("language_model")) {
    return { vision: ["vision_tower"], projector: present("multi_modal_projector"), language: present("language_model", "lm_head") };
  }
  if (model.hasSubmodule("vision_model") || model.hasSubmodule("text_model")) {
    return { vision: present("vision_model", "visual_projection"), projector: [], language: present("text_model", "text_projection") };
  }
  if (model.hasSubmodule("model") && model.hasSubmodule("lm_head")) return { vision: [], projector: [], language: ["model", "lm_head"] };
  if (model.hasSubmodule("embed_tokens") && model.hasSubmodule("layers")) return { vision: [], projector: [], language: [""] };
  if (model.hasSubmodule("embeddings.patch_embedding")) return { vision: [""], projector: [], language: [] };
  const children = model.namedChildren().map(([k]) => k);
  throw new Error(
    `componentPrefixes: cannot tell where the vision tower, projector and language model of ${model.constructor.name} are ` +
      `(its submodules: ${children.join(", ") || "none"}). Give the model an adaptComponents() method returning ` +
      '{ vision: [...], projector: [...], language: [...] } module paths.',
  );
}

const isUnder = (path: string, prefix: string) => prefix === "" || path === prefix || path.startsWith(prefix + ".");

/** The path relative to the first prefix it lies under ("" for the prefix itself), or null. */
function pathInside(path: string, prefixes: string[]): string | null {
  for (const prefix of prefixes) {
    if (prefix === "") return path;
    if (path === prefix) return "";
    if (path.startsWith(prefix + ".")) return path.slice(prefix.length + 1);
  }
  return null;
}

/** Which component a module or parameter path belongs to ("head": outside the other three). */
export function componentOf(path: string, prefixes: ComponentPrefixes): Component {
  for (const component of ["vision", "projector", "language"] as const) {
    if (prefixes[component].some((p) => isUnder(path, p))) return component;
  }
  return "head";
}

// ---- target matching (PEFT's rules) ----

const compiledPatterns = new Map<string, RegExp>();

/** A Python `re` pattern as a JS RegExp that must match the whole string (Python's re.fullmatch). */
export function fullMatchRegex(pattern: string, where = "target_modules"): RegExp {
  let regex = compiledPatterns.get(pattern);
  if (regex) return regex;
  try {
    regex = new RegExp(`^(?:${pattern.replace(/\(\?P</g, "(?<").replace(/\(\?P=(\w+)\)/g, "\\k<$1>")})$`);
  } catch (error) {
    throw new Error(`${where}: ${JSON.stringify(pattern)} is not a valid regular expression: ${(error as Error).message}`);
  }
  // Matching a large model's module paths uses the same few patterns thousands of times.
  if (compiledPatterns.size > 256) compiledPatterns.clear();
  compiledPatterns.set(pattern, regex);
  return regex;
}

/** PEFT's target_modules rule: a list matches a path equal to a name or ending in "." + name; a string must match the whole path. */
export function matchesTarget(path: string, targets: string[] | string): boolean {
  if (typeof targets === "string") return fullMatchRegex(targets).test(path);
  return targets.some((name) => path === name || path.endsWith("." + name));
}

/** Modules LoRA can wrap (Linear, or a LoRALinear already there), skipping the insides of LoRA layers. */
export function adaptableModules(model: Module): [string, Module][] {
  const loraPaths = loraLayers(model).map(([path]) => path);
  return model.namedModules().filter(([path]) => path !== "" && !loraPaths.some((lora) => path.startsWith(lora + ".")));
}

const isAdaptable = (m: Module) => m instanceof Linear || m instanceof LoRALinear;

/** The output layer that "all-linear" leaves out, as PEFT does for models with an LM head. */
export function outputLayerPaths(model: Module): string[] {
  return model.hasSubmodule("lm_head") ? ["lm_head"] : [];
}

// ---- what adaptModel remembers for saveAdapter ----

export interface AdaptationState {
  /** Module paths (ours) trained in full: saved as PEFT's modules_to_save. */
  fullModules: string[];
  /** Trained parameters that sit on the model root (CLIP's logit_scale): PEFT files cannot hold them. */
  rootParameters: string[];
  /** base_model_name_or_path of the adapter that was loaded, if any. */
  baseModelPath?: string | null;
}
const adaptationStates = new WeakMap<Module, AdaptationState>();

export function adaptationState(model: Module): AdaptationState {
  let state = adaptationStates.get(model);
  if (!state) {
    state = { fullModules: [], rootParameters: [] };
    adaptationStates.set(model, state);
  }
  return state;
}

// ---- adaptModel ----

/** "trainable params: X || all params: Y || trainable%: Z", as PEFT's print_trainable_parameters. */
export function trainableReport(model: Module): string {
  const all = model.numParameters();
  const trainable = model.numParameters(true);
  const percent = all === 0 ? 0 : (100 * trainable) / all;
  return `trainable params: ${trainable.toLocaleString("en-US")} || all params: ${all.toLocaleString("en-US")} || trainable%: ${percent.toFixed(4)}`;
}

function checkPlan(plan: AdaptationPlan): void {
  if (plan === null || typeof plan !== "object") throw new Error(`adaptModel: the plan must be an object like { language: { mode: "lora" } }, got ${JSON.stringify(plan)}`);
  for (const [component, adaptation] of Object.entries(plan)) {
    if (!COMPONENTS.includes(component as Component)) {
      throw new Error(`adaptModel: unknown component '${component}' in the plan; components are ${COMPONENTS.join(", ")}`);
    }
    if (adaptation === undefined) continue;
    if (adaptation === null || typeof adaptation !== "object") throw new Error(`adaptModel: ${component} must be an object with a mode, got ${JSON.stringify(adaptation)}`);
    for (const key of Object.keys(adaptation)) {
      if (!ADAPTATION_KEYS.has(key)) throw new Error(`adaptModel: ${component}.${key} is not an option; options are ${[...ADAPTATION_KEYS].join(", ")}`);
    }
    if (!["frozen", "lora", "full"].includes(adaptation.mode)) {
      throw new Error(`adaptModel: ${component}.mode must be "frozen", "lora" or "full", got ${JSON.stringify(adaptation.mode)}`);
    }
    const targets = adaptation.targetModules;
    if (targets !== undefined && typeof targets !== "string" && !(Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === "string" && t !== ""))) {
      throw new Error(`adaptModel: ${component}.targetModules must be a non-empty list of layer names or one regex string, got ${JSON.stringify(targets)}`);
    }
    if (typeof targets === "string" && targets.toLowerCase() !== ALL_LINEAR) fullMatchRegex(targets, `adaptModel: ${component}.targetModules`);
    const { r, alpha, dropout } = adaptation;
    if (r !== undefined && !(Number.isInteger(r) && r > 0)) throw new Error(`adaptModel: ${component}.r must be a positive integer, got ${JSON.stringify(r)}`);
    if (alpha !== undefined && !(typeof alpha === "number" && Number.isFinite(alpha) && alpha > 0)) throw new Error(`adaptModel: ${component}.alpha must be a positive number, got ${JSON.stringify(alpha)}`);
    if (dropout !== undefined && !(typeof dropout === "number" && dropout >= 0 && dropout < 1)) throw new Error(`adaptModel: ${component}.dropout must be in [0, 1), got ${JSON.stringify(dropout)}`);
  }
}

const listed = (paths: string[], count = 3) => paths.slice(0, count).join(", ") + (paths.length > count ? `, ... (+${paths.length - count} more)` : "");

/**
 * The modules of one component that a LoRA target selects. Names follow PEFT's suffix rule on the full path;
 * a regex may match the full path (ours or PEFT's spelling) or the path inside the component. Anything
 * selected that is not a Linear is an error, as in PEFT.
 */
function selectLoraTargets(
  model: Module, component: Component, prefixes: ComponentPrefixes, targets: string[] | string, naming: PeftNaming,
): [string, Linear | LoRALinear][] {
  const inComponent = adaptableModules(model).filter(([path]) => componentOf(path, prefixes) === component);
  const roots = component === "head" ? [""] : prefixes[component];
  const allLinear = typeof targets === "string" && targets.toLowerCase() === ALL_LINEAR;
  const outputLayers = outputLayerPaths(model);
  const regex = typeof targets === "string" && !allLinear ? fullMatchRegex(targets, `${component}.targetModules`) : null;
  const selected: [string, Module][] = inComponent.filter(([path, m]) => {
    if (allLinear) return isAdaptable(m) && !outputLayers.includes(path);
    if (regex) return regex.test(path) || regex.test(naming.toPeft(path)) || regex.test(pathInside(path, roots) ?? path);
    return matchesTarget(path, targets as string[]) || matchesTarget(naming.toPeft(path), targets as string[]);
  });
  const wrong = selected.filter(([, m]) => !isAdaptable(m));
  if (wrong.length > 0) {
    throw new Error(
      `adaptModel: ${component}.targetModules ${JSON.stringify(targets)} selects ${wrong.length} module(s) that are not Linear layers: ` +
        `${listed(wrong.map(([p, m]) => `${p} (${m.constructor.name})`))}. LoRA wraps Linear layers; name those inside instead.`,
    );
  }
  return selected as [string, Linear | LoRALinear][];
}

/** Linear layer names (the last path part) in a component, for error messages. */
function linearNames(model: Module, component: Component, prefixes: ComponentPrefixes): string[] {
  const names = adaptableModules(model)
    .filter(([path, m]) => isAdaptable(m) && componentOf(path, prefixes) === component)
    .map(([path]) => path.slice(path.lastIndexOf(".") + 1));
  return [...new Set(names)].sort();
}

/**
 * Freezes the whole model, then applies the plan component by component (components left out stay frozen):
 * "full" unfreezes the component, "lora" wraps the Linear layers its targetModules select inside the
 * component (layers already wrapped keep their adapter and become trainable again). Logs what each
 * component got, the matched layers (count and a few paths) and PEFT's trainable-parameter line. `components` gives
 * the component paths (a VisionLanguageModel's components()); by default they are read from the model's layout.
 */
export function adaptModel(model: Module, plan: AdaptationPlan, log: (line: string) => void = () => {}, components?: ComponentPrefixes): AdaptResult {
  checkPlan(plan);
  const prefixes = components ?? componentPrefixes(model);
  const naming = peftNaming(model);
  const where = (component: Component) => (component === "head" ? "outside the other components" : `under ${prefixes[component].map((p) => p || "(the whole model)").join(", ")}`);
  model.freeze();
  const wrapped: Record<Component, string[]> = { vision: [], projector: [], language: [], head: [] };
  const fullModules: string[] = [];
  const rootParameters: string[] = [];
  const lines: string[] = [];
  const say = (line: string) => {
    lines.push(line);
    log(line);
  };
  for (const component of COMPONENTS) {
    const adaptation = plan[component] ?? { mode: "frozen" as const };
    const exists = component === "head" ? model.namedParameters().some(([name]) => componentOf(name, prefixes) === "head") : prefixes[component].length > 0;
    if (!exists) {
      if (adaptation.mode === "frozen") continue;
      if (component === "head") {
        say(`head: ${model.constructor.name} has no parameters outside its vision/projector/language components (a task's own head trains with its task)`);
        continue;
      }
      const have = (["vision", "projector", "language"] as const).filter((c) => prefixes[c].length > 0);
      throw new Error(`adaptModel: ${model.constructor.name} has no ${component} component to train ${adaptation.mode === "lora" ? "with LoRA" : "in full"}; it has: ${have.join(", ") || "none"}`);
    }
    if (adaptation.mode === "frozen") {
      say(`${component}: frozen`);
      continue;
    }
    if (adaptation.mode === "full") {
      let tensors = 0;
      let values = 0;
      for (const [name, p] of model.namedParameters()) {
        if (componentOf(name, prefixes) !== component || !isFloatingDType(p.dtype)) continue;
        p.requiresGrad = true;
        tensors++;
        values += p.numel();
      }
      if (component === "head") {
        fullModules.push(...model.namedChildren().map(([name]) => name).filter((name) => componentOf(name, prefixes) === "head"));
        rootParameters.push(...model.namedOwnParameters().map(([name]) => name));
      } else {
        fullModules.push(...prefixes[component]);
      }
      say(`${component}: full fine-tuning, ${tensors} parameter tensors (${values.toLocaleString("en-US")} values) ${where(component)}`);
      continue;
    }
    const targets = adaptation.targetModules ?? DEFAULT_TARGETS[component];
    const options: LoRAOptions = { r: adaptation.r ?? 8, alpha: adaptation.alpha ?? 16, dropout: adaptation.dropout ?? 0, rslora: adaptation.rslora ?? false };
    const matches = selectLoraTargets(model, component, prefixes, targets, naming);
    if (matches.length === 0) {
      throw new Error(
        `adaptModel: ${component}.targetModules ${JSON.stringify(targets)} match no Linear layer ${where(component)}; ` +
          `Linear layer names there: ${linearNames(model, component, prefixes).join(", ") || "none"}`,
      );
    }
    let kept = 0;
    for (const [path, m] of matches) {
      if (m instanceof LoRALinear) {
        // An adapter already in place (loaded, or from an earlier plan) is trained further, not replaced.
        for (const p of m.loraParameters()) p.requiresGrad = true;
        kept++;
      } else {
        replaceSubmodule(model, path, new LoRALinear(m, options));
      }
      wrapped[component].push(path);
    }
    const scaling = loraScaling(options);
    say(
      `${component}: LoRA r=${options.r} alpha=${options.alpha}${options.rslora ? " rslora" : ""} (scaling ${Number(scaling.toPrecision(6))})` +
        `${options.dropout ? ` dropout=${options.dropout}` : ""} on ${matches.length} Linear layer(s)${kept ? ` (${kept} already adapted, kept)` : ""}: ${listed(matches.map(([p]) => p))}`,
    );
  }
  Object.assign(adaptationState(model), { fullModules, rootParameters });
  const trainableLine = trainableReport(model);
  say(trainableLine);
  return { trainable: model.namedParameters().filter(([, p]) => p.requiresGrad), report: lines.join("\n"), trainableLine, wrapped };
}
