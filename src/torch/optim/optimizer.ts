// The optimizer base: parameter groups with resolved hyperparameters, lazily created per-parameter state,
// and a state dict split into tensors (for safetensors) and plain JSON metadata (for everything else).
import { noGrad } from "../autograd.js";
import { Tensor, isFloatingDType, type DType } from "../tensor.js";

/** Hyperparameters every optimizer has; each optimizer adds its own. */
export interface BaseHyperparameters {
  lr: number;
  weightDecay: number;
}

/** One group of parameters sharing hyperparameters; options left out take the optimizer's defaults. */
export type ParamGroup<H extends BaseHyperparameters = BaseHyperparameters> = {
  params: Tensor[];
  /** Shown in error messages and saved in the state dict (e.g. "decay", "no_decay", "lora"). */
  name?: string;
} & Partial<H>;

/** A group after defaults are filled in: `lr` is read by step() each time, so a scheduler may set it. */
export type ResolvedParamGroup<H extends BaseHyperparameters = BaseHyperparameters> = H & {
  params: Tensor[];
  name?: string;
};

/** The saved hyperparameters of one group, with the params given as indices into the flat parameter list. */
export type SavedParamGroup = { params: number[]; name?: string } & Record<string, unknown>;

/**
 * Optimizer state in two parts, so a trainer can write `tensors` to safetensors and `meta` to JSON.
 * Tensor names are `state.<param index>.<state name>` (e.g. `state.3.exp_avg`), the param index counting
 * through the groups in order, as in torch.optim.Optimizer.state_dict().
 */
export interface OptimizerStateDict {
  tensors: Record<string, Tensor>;
  meta: { optimizer: string; groups: SavedParamGroup[] };
}

/** Per-parameter state: named tensors (exp_avg, step, momentum_buffer...), all keep()-ed. */
export type ParamState = Record<string, Tensor>;

/** Where a state tensor lives and what it holds, to place loaded tensors and check their shapes. */
export interface StateLayout {
  shape: number[];
  dtype: DType;
  device: string;
}

const STATE_KEY = /^state\.(\d+)\.([A-Za-z_][A-Za-z0-9_]*)$/;

export abstract class Optimizer<H extends BaseHyperparameters = BaseHyperparameters> {
  readonly defaults: H;
  readonly paramGroups: ResolvedParamGroup<H>[] = [];
  /** State of each parameter that has taken a step, keyed by the parameter's Tensor object. */
  protected readonly state = new Map<Tensor, ParamState>();
  // Identity of every registered parameter's storage, to refuse one tensor in two groups.
  readonly #storageOwner = new Map<string, string>();
  readonly #registered = new Set<Tensor>();

  /** Name used in errors and saved in the state dict ("AdamW", "SGD"). */
  readonly optimizerName: string;

  protected constructor(optimizerName: string, paramsOrGroups: Tensor[] | ParamGroup<H>[], defaults: H) {
    this.optimizerName = optimizerName;
    this.validateHyperparameters(defaults, `${this.optimizerName} options`);
    this.defaults = { ...defaults };
    if (!Array.isArray(paramsOrGroups) || paramsOrGroups.length === 0) {
      throw new Error(`${this.optimizerName}: got no parameters; pass a non-empty Tensor[] or ParamGroup[]`);
    }
    const groups: ParamGroup<H>[] = paramsOrGroups[0] instanceof Tensor
      ? [{ params: paramsOrGroups as Tensor[] } as ParamGroup<H>]
      : (paramsOrGroups as ParamGroup<H>[]);
    for (const group of groups) this.addParamGroup(group);
  }

  /** Names of the per-parameter state tensors this optimizer keeps. */
  protected abstract get stateNames(): readonly string[];
  /** Throws when a hyperparameter is out of range; `where` names the group for the message. */
  protected abstract validateHyperparameters(h: H, where: string): void;
  /** Shape, dtype and device a state tensor of `param` must have. */
  protected abstract stateLayout(param: Tensor, name: string, group: ResolvedParamGroup<H>): StateLayout;
  /** Whether a loaded state of one parameter is complete (e.g. AdamW needs exp_avg, exp_avg_sq and step together). */
  protected abstract isCompleteState(names: string[]): boolean;
  /** Updates one group's parameters from their gradients (those whose grad was null are left out). */
  protected abstract updateGroup(group: ResolvedParamGroup<H>, params: Tensor[], grads: Tensor[]): void;

  /** One update of every parameter that has a gradient; parameters whose grad is null are skipped. */
  step(): void {
    for (const group of this.paramGroups) {
      const params: Tensor[] = [];
      const grads: Tensor[] = [];
      try {
        for (const param of group.params) {
          const grad = param.grad;
          if (grad === null) continue;
          grads.push(grad);
          params.push(param);
        }
        if (params.length > 0) this.updateGroup(group, params, grads);
      } finally {
        // param.grad hands out a new handle each time
        for (const grad of grads) grad.dispose();
      }
    }
  }

  /** Adds a group (torch.optim.Optimizer.add_param_group): fills defaults, checks its parameters. */
  addParamGroup(group: ParamGroup<H>): void {
    const label = this.groupLabel(group, this.paramGroups.length);
    if (!group || !Array.isArray(group.params)) throw new Error(`${this.optimizerName}: ${label} needs a params array`);
    if (group.params.length === 0) throw new Error(`${this.optimizerName}: ${label} has no parameters; drop it or give it some`);
    const known = new Set([...Object.keys(this.defaults), "params", "name"]);
    for (const key of Object.keys(group)) {
      if (!known.has(key)) {
        throw new Error(`${this.optimizerName}: unknown option '${key}' in ${label} (known: ${[...known].join(", ")})`);
      }
    }
    const resolved = {} as ResolvedParamGroup<H>;
    // Arrays (betas) are copied so that groups never share one to mutate.
    for (const source of [this.defaults, group]) {
      for (const [key, value] of Object.entries(source)) {
        if (value !== undefined) (resolved as unknown as Record<string, unknown>)[key] = Array.isArray(value) ? [...value] : value;
      }
    }
    resolved.params = [...group.params];
    this.validateHyperparameters(resolved, label);
    const addedStorage = new Map<string, string>();
    const addedParams = new Set<Tensor>();
    group.params.forEach((param, i) => {
      const where = `parameter ${i} of ${label}`;
      if (!(param instanceof Tensor)) throw new Error(`${this.optimizerName}: ${where} is not a Tensor`);
      if (param.isDisposed) throw new Error(`${this.optimizerName}: ${where} was disposed`);
      if (!isFloatingDType(param.dtype)) {
        throw new Error(`${this.optimizerName}: ${where} has dtype ${param.dtype}; only floating-point tensors can be optimized`);
      }
      if (!param.isLeaf) {
        throw new Error(`${this.optimizerName}: ${where} is not a leaf tensor (it was computed from others); optimize the tensor it came from, or detach() it`);
      }
      const storage = storageKey(param);
      const owner = (storage && (this.#storageOwner.get(storage) ?? addedStorage.get(storage))) ||
        (this.#registered.has(param) || addedParams.has(param) ? "another group" : undefined);
      if (owner) {
        throw new Error(
          `${this.optimizerName}: ${where} is already in ${owner} (the same tensor, or another handle on its storage); ` +
            `each parameter may appear in one group only, once`,
        );
      }
      if (storage) addedStorage.set(storage, label);
      addedParams.add(param);
    });
    for (const [storage, owner] of addedStorage) this.#storageOwner.set(storage, owner);
    for (const param of addedParams) this.#registered.add(param);
    this.paramGroups.push(resolved);
  }

  /** Sets every parameter's grad to null (torch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const group of this.paramGroups) for (const param of group.params) param.zeroGrad();
  }

  /**
   * The state to save: `tensors` are new handles on the optimizer's own state tensors (no copy); dispose
   * them (or let tidy() do it) once written. `meta` is plain JSON: each group's hyperparameters and params.
   */
  stateDict(): OptimizerStateDict {
    const tensors: Record<string, Tensor> = {};
    const groups: SavedParamGroup[] = [];
    let index = 0;
    for (const group of this.paramGroups) {
      const saved: SavedParamGroup = { params: [] };
      for (const [key, value] of Object.entries(group)) {
        if (key !== "params") saved[key] = Array.isArray(value) ? [...value] : value;
      }
      for (const param of group.params) {
        const state = this.state.get(param);
        if (state) for (const [name, t] of Object.entries(state)) tensors[`state.${index}.${name}`] = t.alias();
        saved.params.push(index++);
      }
      groups.push(saved);
    }
    return { tensors, meta: { optimizer: this.optimizerName, groups } };
  }

  /**
   * Restores state saved by stateDict() into this optimizer, whose groups must hold the same number of
   * parameters in the same order. Tensors are copied (the caller keeps ownership of `dict.tensors`) and
   * placed on each parameter's device; saved hyperparameters replace the current ones, as in PyTorch.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    const where = `${this.optimizerName}.loadStateDict`;
    const meta = dict?.meta;
    if (!meta || !Array.isArray(meta.groups) || typeof dict.tensors !== "object") {
      throw new Error(`${where}: expected { tensors, meta: { optimizer, groups } } as made by stateDict()`);
    }
    if (meta.optimizer !== this.optimizerName) {
      throw new Error(`${where}: the state was saved by ${meta.optimizer}, not ${this.optimizerName}`);
    }
    if (meta.groups.length !== this.paramGroups.length) {
      throw new Error(`${where}: the state has ${meta.groups.length} param groups, this optimizer has ${this.paramGroups.length}`);
    }
    const flat: { param: Tensor; group: ResolvedParamGroup<H> }[] = [];
    meta.groups.forEach((saved, g) => {
      const group = this.paramGroups[g];
      const label = this.groupLabel(group, g);
      if (!Array.isArray(saved.params) || saved.params.length !== group.params.length) {
        throw new Error(`${where}: saved group ${g} has ${saved.params?.length} params, ${label} has ${group.params.length}`);
      }
      if (saved.name !== undefined && group.name !== undefined && saved.name !== group.name) {
        throw new Error(`${where}: saved group ${g} is named '${saved.name}', this optimizer's is '${group.name}'`);
      }
      const hyper = { ...group } as unknown as Record<string, unknown>;
      for (const key of Object.keys(this.defaults)) if (key in saved) hyper[key] = saved[key];
      this.validateHyperparameters(hyper as H, `saved group ${g}`);
      for (const param of group.params) flat.push({ param, group });
    });

    // Check everything before changing anything, so a bad file leaves the optimizer as it was.
    const byParam = new Map<number, Map<string, Tensor>>();
    for (const [key, t] of Object.entries(dict.tensors)) {
      const match = STATE_KEY.exec(key);
      if (!match) throw new Error(`${where}: unexpected tensor '${key}' (expected state.<param index>.<name>)`);
      const index = Number(match[1]);
      const name = match[2];
      if (index >= flat.length) throw new Error(`${where}: '${key}' names param ${index}, but there are ${flat.length} params`);
      if (!this.stateNames.includes(name)) {
        throw new Error(`${where}: '${key}' is not ${this.optimizerName} state (expected one of ${this.stateNames.join(", ")})`);
      }
      if (!(t instanceof Tensor)) throw new Error(`${where}: '${key}' is not a Tensor`);
      const { param, group } = flat[index];
      const layout = this.stateLayout(param, name, group);
      if (!sameShape(t.shape, layout.shape)) {
        throw new Error(`${where}: '${key}' has shape [${t.shape}], param ${index} needs [${layout.shape}]`);
      }
      if (!byParam.has(index)) byParam.set(index, new Map());
      byParam.get(index)!.set(name, t);
    }
    for (const [index, names] of byParam) {
      if (!this.isCompleteState([...names.keys()])) {
        throw new Error(`${where}: the state of param ${index} has only ${[...names.keys()].join(", ")} (needs ${this.stateNames.join(", ")})`);
      }
    }

    meta.groups.forEach((saved, g) => {
      const group = this.paramGroups[g] as unknown as Record<string, unknown>;
      for (const key of Object.keys(this.defaults)) {
        if (key in saved) group[key] = Array.isArray(saved[key]) ? [...(saved[key] as unknown[])] : saved[key];
      }
    });
    this.disposeState();
    noGrad(() => {
      for (const [index, names] of byParam) {
        const { param, group } = flat[index];
        const state: ParamState = {};
        for (const [name, source] of names) {
          const layout = this.stateLayout(param, name, group);
          state[name] = source.to({ dtype: layout.dtype, device: layout.device, copy: true }).keep();
        }
        this.state.set(param, state);
      }
    });
  }

  /** Frees every state tensor; the optimizer starts afresh on its next step. */
  dispose(): void {
    this.disposeState();
  }

  protected disposeState(): void {
    for (const state of this.state.values()) for (const t of Object.values(state)) t.dispose();
    this.state.clear();
  }

  protected groupLabel(group: { name?: string } | undefined, index: number): string {
    return group?.name ? `param group ${index} ('${group.name}')` : `param group ${index}`;
  }
}

// Two handles on one parameter (or views of one storage) share device and data pointer; empty tensors have none.
function storageKey(param: Tensor): string | null {
  return param.numel() === 0 ? null : `${param.device}:${param.dataPtr()}`;
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Throws unless value is a finite number >= min (and < max when given). */
export function checkRange(optimizer: string, where: string, key: string, value: unknown, min: number, max = Infinity): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value >= max) {
    const range = max === Infinity ? `>= ${min}` : `in [${min}, ${max})`;
    throw new Error(`${optimizer}: ${key} must be a number ${range} in ${where}, got ${String(value)}`);
  }
}

/** The options that are set (undefined dropped), after refusing any key not in `known`. */
export function pickOptions(optimizer: string, options: object | undefined, known: string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options ?? {})) {
    if (!known.includes(key)) throw new Error(`${optimizer}: unknown option '${key}' (known: ${known.join(", ")})`);
    if (value !== undefined) picked[key] = value;
  }
  return picked;
}
