// The module system: Parameter, Module (a tree of named parameters, buffers and submodules whose dotted
// paths are the checkpoint's weight names), ModuleList, Sequential and ModuleDict.
import { native } from "../native.js";
import { Tensor, isFloatingDType, toDType, type DType, type DTypeLike, type DeviceLike } from "../tensor.js";
import { noGrad } from "../autograd.js";

/**
 * A tensor that is a trainable weight of a Module. It takes over the native handle of the tensor it is made
 * from (that JS object then looks disposed, but the memory now belongs to the Parameter), survives every
 * tidy() scope, and is a leaf of the autograd graph.
 */
export class Parameter extends Tensor {
  constructor(t: Tensor, requiresGrad = true) {
    const handle = t.handle;
    if (requiresGrad && !isFloatingDType(native.dtype(handle))) {
      throw new Error(`Parameter: a ${native.dtype(handle)} tensor cannot require grad; pass requiresGrad=false (new Parameter(t, false))`);
    }
    // A tensor with autograd history cannot be a leaf: keep only its data, as torch.nn.Parameter does.
    const leafHandle = native.isLeaf(handle) ? handle : native.detach(handle);
    super(leafHandle);
    if (leafHandle !== handle) native.dispose(handle);
    t._setHandle(null);
    this.kept = true;
    this._watch();
    if (requiresGrad || native.requiresGrad(leafHandle)) native.setRequiresGrad(leafHandle, requiresGrad);
  }
  override toString(): string {
    return this._handle === null ? "Parameter(disposed)" : `Parameter(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device}, requiresGrad=${this.requiresGrad})`;
  }
}

export interface ModuleToOptions {
  dtype?: DTypeLike;
  device?: DeviceLike;
}

export interface LoadStateDictOptions {
  /** Throw when a key of the module is absent from the state or a key of the state is unknown (default true). */
  strict?: boolean;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

const joinName = (prefix: string, name: string) => (prefix ? `${prefix}.${name}` : name);
const LISTED_KEYS = 20;

function listKeys(keys: string[]): string {
  const shown = keys.slice(0, LISTED_KEYS).join(", ");
  return keys.length > LISTED_KEYS ? `${shown}, ... (${keys.length - LISTED_KEYS} more)` : shown;
}

function isTensorValue(value: unknown): value is Tensor {
  return value instanceof Tensor;
}

/**
 * Base class of every layer and model. Properties are the tree: a Parameter property is a parameter named by
 * its key, a Module property is a submodule (names are dotted: "layers.0.self_attn.q_proj.weight"), a buffer
 * is a tensor registered with registerBuffer(). Arrays are not walked (use ModuleList) and keys starting
 * with "_" are skipped, so private state and back-references stay out of the tree.
 *
 * The module owns its parameters and buffers: dispose() frees them, and replacing one through setParameter()
 * or registerBuffer() frees the one it replaces (unless the tree still uses it elsewhere).
 */
export abstract class Module {
  /** Training mode (dropout active); set recursively by train() / eval(). */
  training = true;
  /** @internal Names of this module's buffers and whether each is saved in stateDict(). */
  _bufferPersistence: Map<string, boolean> = new Map();

  // ---- walking the tree ----

  /** Direct submodules in property order. */
  namedChildren(): [string, Module][] {
    const children: [string, Module][] = [];
    for (const [key, value] of Object.entries(this)) {
      if (key.startsWith("_")) continue;
      if (value instanceof Module) children.push([key, value]);
    }
    return children;
  }
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module (named "" or prefix) and every submodule below it, depth first; a shared module appears once. */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [];
    const seen = new Set<Module>();
    const visit = (module: Module, name: string) => {
      if (seen.has(module)) return;
      seen.add(module);
      out.push([name, module]);
      for (const [key, child] of module.namedChildren()) visit(child, joinName(name, key));
    };
    visit(this, prefix);
    return out;
  }
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Parameters directly on this module (not its submodules), in property order. */
  namedOwnParameters(): [string, Parameter][] {
    const own: [string, Parameter][] = [];
    for (const [key, value] of Object.entries(this)) {
      if (key.startsWith("_")) continue;
      if (value instanceof Parameter) own.push([key, value]);
    }
    return own;
  }

  /**
   * Every parameter of the tree with its dotted name ("layers.0.mlp.fc1.weight"). A parameter shared by two
   * modules (tied weights) is listed once, under its first name, unless removeDuplicate is false.
   */
  namedParameters(prefix = "", removeDuplicate = true): [string, Parameter][] {
    return this.#collect(prefix, removeDuplicate, (m) => m.namedOwnParameters());
  }
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Buffers directly on this module (null ones skipped). */
  namedOwnBuffers(onlyPersistent = false): [string, Tensor][] {
    const own: [string, Tensor][] = [];
    for (const [name, persistent] of this._bufferPersistence) {
      if (onlyPersistent && !persistent) continue;
      const value = (this as Record<string, unknown>)[name];
      if (isTensorValue(value)) own.push([name, value]);
    }
    return own;
  }
  namedBuffers(prefix = "", removeDuplicate = true): [string, Tensor][] {
    return this.#collect(prefix, removeDuplicate, (m) => m.namedOwnBuffers());
  }
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  #collect<T extends Tensor>(prefix: string, removeDuplicate: boolean, own: (m: Module) => [string, T][]): [string, T][] {
    const out: [string, T][] = [];
    const seen = new Set<Tensor>();
    const visit = (module: Module, name: string, path: Set<Module>) => {
      if (path.has(module)) return; // a cycle through a non-"_" back-reference
      for (const [key, t] of own(module)) {
        if (removeDuplicate && seen.has(t)) continue;
        seen.add(t);
        out.push([joinName(name, key), t]);
      }
      path.add(module);
      for (const [key, child] of module.namedChildren()) {
        // A shared submodule's tensors are deduplicated above; without dedup it is walked under each name.
        visit(child, joinName(name, key), path);
      }
      path.delete(module);
    };
    visit(this, prefix, new Set());
    return out;
  }

  // ---- buffers ----

  /**
   * Sets this[name] to a tensor the module owns but does not train (running statistics, rotary tables,
   * position ids). The tensor is kept (survives tidy); persistent buffers are saved in stateDict().
   * A different tensor previously registered under the name is disposed.
   */
  registerBuffer(name: string, t: Tensor | null, persistent = true): void {
    if (name.includes(".") || name === "") throw new Error(`registerBuffer: invalid buffer name '${name}' (no dots, not empty)`);
    const self = this as Record<string, unknown>;
    const previous = self[name];
    // A declared field (`inv_freq!: Tensor`) may already exist empty or hold a tensor; anything else is a clash.
    const free = previous === undefined || previous === null || (isTensorValue(previous) && !(previous instanceof Parameter));
    if (!this._bufferPersistence.has(name) && (!free || (previous === undefined && name in this && !Object.hasOwn(this, name)))) {
      throw new Error(`registerBuffer: '${name}' is already a property of ${this.constructor.name}; pick another buffer name`);
    }
    if (t instanceof Parameter) throw new Error(`registerBuffer: '${name}' is a Parameter; assign it as a property instead`);
    if (isTensorValue(previous) && previous !== t) previous.dispose();
    if (t) t.kept = true;
    this._bufferPersistence.set(name, persistent);
    self[name] = t;
  }

  // ---- state dict ----

  /** Parameters and persistent buffers by dotted name: the live tensors, not copies. Tied tensors appear under each name. */
  stateDict(prefix = ""): Map<string, Tensor> {
    const state = new Map<string, Tensor>();
    const visit = (module: Module, name: string, path: Set<Module>) => {
      if (path.has(module)) return;
      for (const [key, p] of module.namedOwnParameters()) state.set(joinName(name, key), p);
      for (const [key, b] of module.namedOwnBuffers(true)) state.set(joinName(name, key), b);
      path.add(module);
      for (const [key, child] of module.namedChildren()) visit(child, joinName(name, key), path);
      path.delete(module);
    };
    visit(this, prefix, new Set());
    return state;
  }

  /**
   * Copies values into the existing parameters and buffers (without autograd; dtype and device are cast to
   * the target's). Every shape is checked before anything is copied; with strict (the default) missing and
   * unexpected keys throw too. Returns the keys that did not match.
   */
  loadStateDict(state: Map<string, Tensor> | Record<string, Tensor>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const source = state instanceof Map ? state : new Map(Object.entries(state));
    const targets = this.stateDict();
    const missingKeys = [...targets.keys()].filter((k) => !source.has(k));
    const unexpectedKeys = [...source.keys()].filter((k) => !targets.has(k));
    const mismatches: string[] = [];
    for (const [key, target] of targets) {
      const value = source.get(key);
      if (value === undefined) continue;
      if (!(value instanceof Tensor)) throw new Error(`loadStateDict: value for '${key}' is not a Tensor`);
      const want = target.shape;
      const got = value.shape;
      if (want.length !== got.length || want.some((d, i) => d !== got[i])) {
        mismatches.push(`'${key}': checkpoint has shape [${got}], module expects [${want}]`);
      }
    }
    if (mismatches.length > 0) {
      throw new Error(
        `loadStateDict: shape mismatch for ${mismatches.length} key(s) in ${this.constructor.name}:\n  ${mismatches.slice(0, LISTED_KEYS).join("\n  ")}` +
          (mismatches.length > LISTED_KEYS ? `\n  ... (${mismatches.length - LISTED_KEYS} more)` : "") +
          "\nFix: check that the config matches the checkpoint (sizes, number of heads, vocabulary).",
      );
    }
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) {
      const parts: string[] = [];
      if (missingKeys.length > 0) parts.push(`missing keys (${missingKeys.length}): ${listKeys(missingKeys)}`);
      if (unexpectedKeys.length > 0) parts.push(`unexpected keys (${unexpectedKeys.length}): ${listKeys(unexpectedKeys)}`);
      throw new Error(
        `loadStateDict: the state does not match ${this.constructor.name}:\n  ${parts.join("\n  ")}\n` +
          "Fix: rename the keys to the module's names, or pass { strict: false } to load the ones that match.",
      );
    }
    noGrad(() => {
      for (const [key, target] of targets) {
        const value = source.get(key);
        if (value !== undefined && value !== target) target.copy_(value);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  // ---- paths ----

  /** The submodule at a dotted path ("" is this module). */
  /** true when getSubmodule(path) would find a module. */
  hasSubmodule(path: string): boolean {
    try {
      this.getSubmodule(path);
      return true;
    } catch {
      return false;
    }
  }

  getSubmodule(path: string): Module {
    if (path === "") return this;
    let module: Module = this;
    const parts = path.split(".");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      const next = part.startsWith("_") ? undefined : (module as unknown as Record<string, unknown>)[part];
      if (!(next instanceof Module)) {
        const where = parts.slice(0, i).join(".") || "(root)";
        const children = module.namedChildren().map(([k]) => k);
        throw new Error(`getSubmodule('${path}'): ${where} (${module.constructor.name}) has no submodule '${part}'; its submodules are: ${children.join(", ") || "none"}`);
      }
      module = next;
    }
    return module;
  }

  /** The parameter at a dotted path ("layers.0.mlp.fc1.weight"). */
  getParameter(path: string): Parameter {
    const { owner, name } = this.#splitPath(path, "getParameter");
    const value = (owner as unknown as Record<string, unknown>)[name];
    if (!(value instanceof Parameter)) {
      throw new Error(`getParameter('${path}'): ${owner.constructor.name} has no parameter '${name}'; its parameters are: ${owner.namedOwnParameters().map(([k]) => k).join(", ") || "none"}`);
    }
    return value;
  }

  /**
   * Replaces the parameter at a dotted path (checkpoint loaders, quantization, adapters). A plain Tensor is
   * wrapped in a Parameter that requires grad when the old one did and the dtype is floating. The old
   * parameter is disposed unless it is still used elsewhere in this tree (tied weights) or disposeOld is false.
   */
  setParameter(path: string, t: Tensor, options: { disposeOld?: boolean } = {}): void {
    const { owner, name } = this.#splitPath(path, "setParameter");
    const record = owner as unknown as Record<string, unknown>;
    const old = record[name];
    if (!(old instanceof Parameter) && !(name in owner && (old === null || old === undefined))) {
      throw new Error(`setParameter('${path}'): ${owner.constructor.name} has no parameter '${name}'; its parameters are: ${owner.namedOwnParameters().map(([k]) => k).join(", ") || "none"}`);
    }
    const replacement = t instanceof Parameter ? t : new Parameter(t, (old instanceof Parameter ? old.requiresGrad : true) && isFloatingDType(t.dtype));
    record[name] = replacement;
    if (old instanceof Parameter && old !== replacement && (options.disposeOld ?? true)) {
      const stillUsed = this.namedParameters("", false).some(([, p]) => p === old);
      if (!stillUsed) old.dispose();
    }
  }

  #splitPath(path: string, what: string): { owner: Module; name: string } {
    const dot = path.lastIndexOf(".");
    const name = dot < 0 ? path : path.slice(dot + 1);
    if (name === "" || name.startsWith("_")) throw new Error(`${what}('${path}'): invalid parameter name '${name}'`);
    return { owner: dot < 0 ? this : this.getSubmodule(path.slice(0, dot)), name };
  }

  // ---- modes ----

  /** Sets training mode on this module and every submodule (dropout follows it). */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Sets requiresGrad on every parameter (integer parameters, which cannot require grad, are skipped). */
  requiresGrad_(flag: boolean): this {
    for (const p of this.parameters()) {
      if (!flag || isFloatingDType(p.dtype)) p.requiresGrad = flag;
    }
    return this;
  }
  freeze(): this {
    return this.requiresGrad_(false);
  }
  unfreeze(): this {
    return this.requiresGrad_(true);
  }

  /** Clears the .grad of every parameter. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  // ---- conversion and memory ----

  /**
   * Converts every parameter and buffer in place: "bf16" / "float32" casts floating tensors only (integer
   * buffers keep their dtype), "cuda" / "cpu" moves all of them, or { dtype, device } does both. The
   * Parameter and buffer objects stay the same (optimizers and tied weights keep working); their storage is
   * replaced and the old one freed.
   */
  to(target: DTypeLike | DeviceLike | ModuleToOptions): this {
    let dtype: DType | null = null;
    let device: string | null = null;
    if (typeof target === "string") {
      if (target === "cpu" || target.startsWith("cuda")) device = target;
      else dtype = toDType(target);
    } else {
      dtype = target.dtype ? toDType(target.dtype) : null;
      device = target.device ?? null;
    }
    const done = new Set<Tensor>();
    noGrad(() => {
      for (const t of [...this.parameters(), ...this.buffers()]) {
        if (done.has(t)) continue;
        done.add(t);
        convertInPlace(t, isFloatingDType(t.dtype) ? dtype : null, device);
      }
    });
    return this;
  }
  cuda(index = 0): this {
    return this.to(`cuda:${index}`);
  }
  cpu(): this {
    return this.to("cpu");
  }
  float(): this {
    return this.to("float32");
  }
  bfloat16(): this {
    return this.to("bfloat16");
  }
  half(): this {
    return this.to("float16");
  }
  double(): this {
    return this.to("float64");
  }

  /** Number of parameter elements (each shared tensor counted once), or only of those that require grad. */
  numParameters(onlyTrainable = false): number {
    let count = 0;
    for (const p of this.parameters()) {
      if (!onlyTrainable || p.requiresGrad) count += p.numel();
    }
    return count;
  }

  /** Frees every parameter and buffer of the tree, and what each module holds besides (disposeOwned); the module cannot be used afterwards. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const b of this.buffers()) b.dispose();
    for (const m of this.modules()) m.disposeOwned();
  }

  /** Frees tensors this module keeps outside its parameters and buffers (caches, tables); called by dispose() on the tree. */
  protected disposeOwned(): void {}
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Calls fn on every submodule (children first, as torch's Module.apply) and then on this module. */
  apply(fn: (m: Module) => void): this {
    const seen = new Set<Module>();
    const visit = (module: Module) => {
      if (seen.has(module)) return;
      seen.add(module);
      for (const child of module.children()) visit(child);
      fn(module);
    };
    visit(this);
    return this;
  }

  /** One line per module and parameter, indented by depth (for logs and debugging). */
  describe(): string {
    const lines: string[] = [];
    const visit = (module: Module, name: string, depth: number) => {
      const pad = "  ".repeat(depth);
      lines.push(`${pad}${name ? name + ": " : ""}${module.constructor.name}`);
      for (const [key, p] of module.namedOwnParameters()) {
        lines.push(`${pad}  ${key}: [${p.isDisposed ? "disposed" : p.shape.join(", ")}] ${p.isDisposed ? "" : p.dtype}${!p.isDisposed && !p.requiresGrad ? " (frozen)" : ""}`);
      }
      for (const [key, child] of module.namedChildren()) visit(child, key, depth + 1);
    };
    visit(this, "", 0);
    return lines.join("\n");
  }
}

/** Replaces t's storage with its conversion to dtype/device, keeping the JS object and requiresGrad. */
function convertInPlace(t: Tensor, dtype: DType | null, device: string | null): void {
  if (t.isDisposed) return;
  const sameDtype = dtype === null || dtype === t.dtype;
  const sameDevice = device === null || sameDeviceName(device, t.device);
  if (sameDtype && sameDevice) return;
  const requiresGrad = t.requiresGrad;
  const oldHandle = t.handle;
  const gradHandle = native.grad(oldHandle);
  const newHandle = native.to(oldHandle, dtype, device, false, false);
  if (requiresGrad) native.setRequiresGrad(newHandle, true);
  if (gradHandle !== null) {
    const newGrad = native.to(gradHandle, dtype, device, false, false);
    native.setGrad(newHandle, newGrad);
    native.dispose(newGrad);
    native.dispose(gradHandle);
  }
  t._setHandle(newHandle);
  native.dispose(oldHandle);
}

function sameDeviceName(wanted: string, actual: string): boolean {
  if (wanted === actual) return true;
  // "cuda" means the current device, which is cuda:0 unless the program changed it.
  return wanted === "cuda" && actual === "cuda:0";
}

/** A list of submodules named "0", "1", ... (torch.nn.ModuleList): layers.0.self_attn... */
export class ModuleList<T extends Module = Module> extends Module {
  [index: number]: T;
  #length = 0;

  constructor(modules: Iterable<T> = []) {
    super();
    for (const m of modules) this.push(m);
  }
  get length(): number {
    return this.#length;
  }
  /** The module at index i (negative counts from the end). */
  at(i: number): T {
    const index = i < 0 ? this.#length + i : i;
    if (!Number.isInteger(index) || index < 0 || index >= this.#length) {
      throw new Error(`ModuleList.at(${i}): index out of range for a list of ${this.#length} modules`);
    }
    return (this as unknown as Record<number, T>)[index];
  }
  push(...modules: T[]): this {
    for (const m of modules) {
      if (!(m instanceof Module)) throw new Error(`ModuleList.push: item ${this.#length} is not a Module`);
      (this as unknown as Record<number, T>)[this.#length++] = m;
    }
    return this;
  }
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#length; i++) yield (this as unknown as Record<number, T>)[i];
  }
  map<U>(fn: (m: T, i: number) => U): U[] {
    return [...this].map(fn);
  }
}

/** A module whose forward takes one tensor and returns one. */
export interface UnaryModule extends Module {
  forward(x: Tensor): Tensor;
}

/** Children called in order, each on the previous one's output (torch.nn.Sequential). */
export class Sequential extends ModuleList<Module> {
  constructor(...modules: (Module | Module[])[]) {
    super(modules.flat());
  }
  forward(x: Tensor): Tensor {
    // Intermediate outputs are left to the caller's tidy() scope, as children may keep references to them.
    let h = x;
    let i = 0;
    for (const m of this) {
      const forward = (m as unknown as { forward?: (x: Tensor) => Tensor }).forward;
      if (typeof forward !== "function") throw new Error(`Sequential: child ${i} (${m.constructor.name}) has no forward(x) method`);
      h = forward.call(m, h);
      i++;
    }
    return h;
  }
}

/** Submodules by name (torch.nn.ModuleDict): the keys are property names, so they appear in parameter paths. */
export class ModuleDict<T extends Module = Module> extends Module {
  #keys: string[] = [];

  constructor(modules: Record<string, T> | Map<string, T> | Iterable<[string, T]> = {}) {
    super();
    const entries = modules instanceof Map ? modules.entries() : Symbol.iterator in modules ? (modules as Iterable<[string, T]>) : Object.entries(modules);
    for (const [key, m] of entries) this.set(key, m);
  }
  /** In insertion order (property order would put numeric-looking keys first). */
  override namedChildren(): [string, Module][] {
    return this.entries();
  }
  get size(): number {
    return this.#keys.length;
  }
  has(key: string): boolean {
    return this.#keys.includes(key);
  }
  get(key: string): T {
    if (!this.has(key)) throw new Error(`ModuleDict.get('${key}'): no such key; keys are: ${this.#keys.join(", ") || "none"}`);
    return (this as unknown as Record<string, T>)[key];
  }
  set(key: string, m: T): this {
    if (!(m instanceof Module)) throw new Error(`ModuleDict.set('${key}'): value is not a Module`);
    if (key === "" || key.includes(".") || key.startsWith("_")) throw new Error(`ModuleDict.set('${key}'): keys must be non-empty, without dots, not starting with '_'`);
    if (!this.has(key) && key in this) throw new Error(`ModuleDict.set('${key}'): '${key}' is a ModuleDict member name; pick another key`);
    if (!this.has(key)) this.#keys.push(key);
    (this as unknown as Record<string, T>)[key] = m;
    return this;
  }
  keys(): string[] {
    return [...this.#keys];
  }
  values(): T[] {
    return this.#keys.map((k) => (this as unknown as Record<string, T>)[k]);
  }
  entries(): [string, T][] {
    return this.#keys.map((k) => [k, (this as unknown as Record<string, T>)[k]]);
  }
  [Symbol.iterator](): IterableIterator<[string, T]> {
    return this.entries()[Symbol.iterator]();
  }
}
