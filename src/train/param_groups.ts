// Optimizer parameter groups: weight decay only on matrices (nanoGPT's dim >= 2 rule; biases and norm weights
// never decay, as transformers' Trainer does), and user groups picked by regex with their own lr / weight decay.
import { Module, Parameter } from "../torch/nn/module.js";

/** A user group: parameters whose name matches `match` (first matching group wins) get its lr / weight decay. */
export interface ParamGroupRule {
  name: string;
  /** A regular expression searched in each parameter's name (not anchored: use ^...$ for that). */
  match: string;
  lr?: number;
  /** When left out, the group's matrices take the run's weightDecay and its biases / norms / 1-d tensors none. */
  weightDecay?: number;
}

export interface TrainableParameter {
  /** The dotted name, prefixed with the module's name when the task trains several modules. */
  name: string;
  param: Parameter;
  /** Biases, norm weights and every tensor of dim < 2: no weight decay by default. */
  noDecay: boolean;
}

export interface ResolvedParamGroup {
  /** "decay", "no_decay", a user group's name, or "<user group>.no_decay". */
  name: string;
  lr: number;
  weightDecay: number;
  params: Parameter[];
  paramNames: string[];
}

const NORM_CLASS = /norm/i;

/**
 * Every parameter that requires grad in the given modules, each once (tied weights under their first name).
 * With one module the names are its own; with several, module i's names are prefixed with prefixes[i]
 * (default "0", "1", ...), e.g. "1.dense.weight".
 */
export function trainableParameters(modules: Module[], prefixes?: string[]): TrainableParameter[] {
  if (prefixes !== undefined && prefixes.length !== modules.length) {
    throw new Error(`trainableParameters: got ${modules.length} modules but ${prefixes.length} module names`);
  }
  const seen = new Set<Parameter>();
  const out: TrainableParameter[] = [];
  modules.forEach((module, i) => {
    if (!(module instanceof Module)) throw new Error(`trainableModules()[${i}] is not a Module (got ${typeof module})`);
    const prefix = prefixes?.[i] ?? (modules.length === 1 ? "" : String(i));
    for (const [moduleName, owner] of module.namedModules(prefix)) {
      const ownerIsNorm = NORM_CLASS.test(owner.constructor.name);
      for (const [key, param] of owner.namedOwnParameters()) {
        if (seen.has(param) || !param.requiresGrad) continue;
        seen.add(param);
        const name = moduleName ? `${moduleName}.${key}` : key;
        out.push({ name, param, noDecay: param.ndim < 2 || ownerIsNorm || key === "bias" || key.endsWith("_bias") });
      }
    }
  });
  return out;
}

export interface ParamGroupOptions {
  lr: number;
  weightDecay: number;
  rules?: ParamGroupRule[];
  /** Put parameters matched by no rule in "decay" / "no_decay" (default true); when false, each is an error. */
  defaultGroups?: boolean;
}

const LISTED = 20;
const listNames = (names: string[]) =>
  names.slice(0, LISTED).join(", ") + (names.length > LISTED ? `, ... (${names.length - LISTED} more)` : "");

/**
 * Splits the parameters into optimizer groups. Every parameter ends up in exactly one group; parameters that
 * no group takes (only possible with defaultGroups false) are listed in the error. Empty groups are dropped.
 */
export function buildParamGroups(params: TrainableParameter[], options: ParamGroupOptions): ResolvedParamGroup[] {
  const rules = options.rules ?? [];
  const compiled = rules.map((rule, i) => {
    const where = `paramGroups[${i}]${rule?.name ? ` ('${rule.name}')` : ""}`;
    if (!rule || typeof rule.name !== "string" || rule.name === "") throw new Error(`${where}: needs a non-empty name`);
    if (rule.name === "decay" || rule.name === "no_decay") throw new Error(`${where}: the names 'decay' and 'no_decay' are the default groups; pick another name`);
    if (typeof rule.match !== "string") throw new Error(`${where}: needs 'match', a regular expression over parameter names`);
    let pattern: RegExp;
    try {
      pattern = new RegExp(rule.match);
    } catch (error) {
      throw new Error(`${where}: 'match' is not a valid regular expression: ${(error as Error).message}`);
    }
    for (const key of ["lr", "weightDecay"] as const) {
      const value = rule[key];
      if (value !== undefined && !(typeof value === "number" && Number.isFinite(value) && value >= 0)) {
        throw new Error(`${where}: ${key} must be a number >= 0, got ${String(value)}`);
      }
    }
    return { rule, pattern, where };
  });
  if (new Set(rules.map((r) => r.name)).size !== rules.length) throw new Error(`paramGroups: two groups share a name (${rules.map((r) => r.name).join(", ")})`);

  const groups = new Map<string, ResolvedParamGroup>();
  const groupFor = (name: string, lr: number, weightDecay: number) => {
    let group = groups.get(name);
    if (!group) groups.set(name, (group = { name, lr, weightDecay, params: [], paramNames: [] }));
    return group;
  };
  // Groups appear in a fixed order (user groups first, as listed) so optimizer state indices are stable.
  for (const { rule } of compiled) {
    const lr = rule.lr ?? options.lr;
    if (rule.weightDecay !== undefined) groupFor(rule.name, lr, rule.weightDecay);
    else {
      groupFor(rule.name, lr, options.weightDecay);
      groupFor(`${rule.name}.no_decay`, lr, 0);
    }
  }
  const useDefaults = options.defaultGroups ?? true;
  if (useDefaults) {
    groupFor("decay", options.lr, options.weightDecay);
    groupFor("no_decay", options.lr, 0);
  }

  const matchedCount = new Map<string, number>();
  const orphans: string[] = [];
  for (const { name, param, noDecay } of params) {
    const hit = compiled.find(({ pattern }) => pattern.test(name));
    let group: ResolvedParamGroup | undefined;
    if (hit) {
      matchedCount.set(hit.rule.name, (matchedCount.get(hit.rule.name) ?? 0) + 1);
      group = hit.rule.weightDecay !== undefined || !noDecay ? groups.get(hit.rule.name) : groups.get(`${hit.rule.name}.no_decay`);
    } else if (useDefaults) {
      group = groups.get(noDecay ? "no_decay" : "decay");
    }
    if (!group) {
      orphans.push(name);
      continue;
    }
    group.params.push(param);
    group.paramNames.push(name);
  }
  if (orphans.length > 0) {
    throw new Error(
      `paramGroups: ${orphans.length} trainable parameter(s) belong to no group: ${listNames(orphans)}. ` +
        "Fix: add a group whose 'match' covers them, freeze them, or keep the default decay / no_decay groups.",
    );
  }
  for (const { rule, where } of compiled) {
    if (!matchedCount.has(rule.name)) {
      throw new Error(
        `${where}: match /${rule.match}/ selects no trainable parameter. Trainable names look like: ` +
          `${listNames(params.slice(0, 5).map((p) => p.name))}. Fix the pattern or remove the group.`,
      );
    }
  }

  const resolved = [...groups.values()].filter((g) => g.params.length > 0);
  // Each trainable parameter in exactly one group: the optimizer relies on it and so does resume.
  const placed = new Map<Parameter, string>();
  for (const group of resolved) {
    group.params.forEach((param, i) => {
      const previous = placed.get(param);
      if (previous) throw new Error(`paramGroups: parameter '${group.paramNames[i]}' is in both '${previous}' and '${group.name}'`);
      placed.set(param, group.name);
    });
  }
  const missing = params.filter((p) => !placed.has(p.param)).map((p) => p.name);
  if (missing.length > 0) throw new Error(`paramGroups: parameter(s) in no group: ${listNames(missing)}`);
  return resolved;
}

/** One line per group: name, tensor count, element count, lr and weight decay. */
export function describeParamGroups(groups: ResolvedParamGroup[]): string {
  return groups
    .map((g) => {
      const elements = g.params.reduce((sum, p) => sum + p.numel(), 0);
      return `  ${g.name}: ${g.params.length} tensors, ${elements.toLocaleString("en-US")} params, lr ${g.lr}, weight decay ${g.weightDecay}`;
    })
    .join("\n");
}
