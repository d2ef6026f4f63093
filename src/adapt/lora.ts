// LoRA (Hu et al., 2021) in PEFT's layout: a Linear is swapped in place for a LoRALinear holding the frozen
// `base_layer` and the trainable `lora_A` [r, in] / `lora_B` [out, r] (Linear layers without bias), so the
// parameter paths are PEFT's (`q_proj.base_layer.weight`, `q_proj.lora_A.weight`) and adapters saved from
// here load in PEFT and back. forward = base(x) + scaling * B(A(dropout(x))), scaling = alpha / r, or
// alpha / sqrt(r) with rsLoRA (Kalajdzievski, 2023).
import { Tensor, tidy, noGrad, isAutocastEnabled, type DType } from "../torch/index.js";
import { Module, Linear, Dropout, Identity, Parameter } from "../torch/nn/index.js";
import * as init from "../torch/nn/init.js";

export interface LoRAOptions {
  /** Rank of the update (rows of A, columns of B). */
  r: number;
  alpha: number;
  /** Dropout on the adapter's input only (PEFT's lora_dropout); 0 = none. */
  dropout?: number;
  /** scaling alpha / sqrt(r) (rsLoRA) instead of alpha / r. */
  rslora?: boolean;
  /**
   * dtype of lora_A / lora_B. Default as PEFT's autocast_adapter_dtype: float32 when the base weight is
   * float16 / bfloat16, else the base weight's dtype.
   */
  dtype?: DType;
}

/** The factor PEFT multiplies B(A(x)) by: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(options: Pick<LoRAOptions, "r" | "alpha" | "rslora">): number {
  return options.rslora ? options.alpha / Math.sqrt(options.r) : options.alpha / options.r;
}

function checkOptions(options: LoRAOptions, where: string): void {
  if (!Number.isInteger(options.r) || options.r <= 0) throw new Error(`${where}: LoRA r must be a positive integer, got ${options.r}`);
  if (!(typeof options.alpha === "number" && Number.isFinite(options.alpha) && options.alpha > 0)) {
    throw new Error(`${where}: LoRA alpha must be a positive number, got ${options.alpha}`);
  }
  const dropout = options.dropout ?? 0;
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`${where}: LoRA dropout must be in [0, 1), got ${dropout}`);
}

const isHalf = (dtype: DType) => dtype === "float16" || dtype === "bfloat16";

export class LoRALinear extends Module {
  base_layer: Linear;
  lora_dropout: Dropout | Identity;
  lora_A: Linear;
  lora_B: Linear;
  readonly r: number;
  readonly alpha: number;
  readonly rslora: boolean;
  readonly scaling: number;
  readonly dropout: number;
  #merged = false;

  /**
   * Wraps base (which is frozen) with a new adapter, initialised as PEFT does: A like nn.Linear's weight
   * (kaiming-uniform, a = sqrt(5)), B zeros, so a new adapter changes nothing until it is trained.
   * The layer takes the base layer's training mode.
   */
  constructor(base: Linear, options: LoRAOptions) {
    super();
    if (!(base instanceof Linear)) throw new Error(`LoRALinear wraps a Linear layer, got ${(base as object)?.constructor?.name ?? typeof base}`);
    checkOptions(options, "LoRALinear");
    this.r = options.r;
    this.alpha = options.alpha;
    this.rslora = options.rslora ?? false;
    this.scaling = loraScaling(options);
    this.dropout = options.dropout ?? 0;
    this.base_layer = base;
    this.lora_dropout = this.dropout > 0 ? new Dropout(this.dropout) : new Identity();
    const baseDType = base.weight.dtype;
    const where = { dtype: options.dtype ?? (isHalf(baseDType) ? "float32" : baseDType), device: base.weight.device };
    this.lora_A = new Linear(base.inFeatures, options.r, { bias: false, ...where });
    init.kaimingUniform_(this.lora_A.weight, { a: Math.sqrt(5) });
    this.lora_B = new Linear(options.r, base.outFeatures, { bias: false, ...where });
    init.zeros_(this.lora_B.weight);
    base.freeze();
    this.train(base.training);
  }

  get inFeatures(): number {
    return this.base_layer.inFeatures;
  }
  get outFeatures(): number {
    return this.base_layer.outFeatures;
  }
  /** The base layer's weight (PEFT's lora.Linear.weight): code that reads layer.weight keeps working. */
  get weight(): Parameter {
    return this.base_layer.weight;
  }
  get bias(): Parameter | null {
    return this.base_layer.bias;
  }
  /** true while B·A·scaling is folded into base_layer.weight (forward then runs the base layer alone). */
  get merged(): boolean {
    return this.#merged;
  }

  forward(x: Tensor): Tensor {
    if (this.#merged) return this.base_layer.forward(x);
    return tidy(() => {
      const result = this.base_layer.forward(x);
      const loraDType = this.lora_A.weight.dtype;
      // As PEFT: the adapter runs in its own dtype (float32 beside a bf16 base) unless autocast picks the dtype.
      const input = x.dtype === loraDType || isAutocastEnabled(x.isCuda ? "cuda" : "cpu") ? x : x.to(loraDType);
      const update = this.lora_B.forward(this.lora_A.forward(this.lora_dropout.forward(input)));
      const sum = result.add(update, this.scaling);
      return sum.dtype === result.dtype ? sum : sum.to(result.dtype);
    });
  }

  /** B·A·scaling [out, in], the change this adapter makes to base_layer.weight (no autograd). */
  deltaWeight(): Tensor {
    return noGrad(() => tidy(() => this.lora_B.weight.matmul(this.lora_A.weight).mul(this.scaling)));
  }

  /** Folds the adapter into base_layer.weight (PEFT's merge); forward then costs one matmul. */
  merge(): void {
    if (this.#merged) return;
    noGrad(() => tidy(() => this.base_layer.weight.copy_(this.base_layer.weight.add(this.deltaWeight().to(this.base_layer.weight.dtype)))));
    this.#merged = true;
  }

  /** Subtracts the adapter from base_layer.weight again (exact up to rounding in the base dtype). */
  unmerge(): void {
    if (!this.#merged) return;
    noGrad(() => tidy(() => this.base_layer.weight.copy_(this.base_layer.weight.sub(this.deltaWeight().to(this.base_layer.weight.dtype)))));
    this.#merged = false;
  }

  /** The adapter's own parameters: [lora_A.weight, lora_B.weight]. */
  loraParameters(): Parameter[] {
    return [this.lora_A.weight, this.lora_B.weight];
  }

  override toString(): string {
    return `LoRALinear(in=${this.inFeatures}, out=${this.outFeatures}, r=${this.r}, alpha=${this.alpha}${this.rslora ? ", rslora" : ""}, scaling=${this.scaling}${this.dropout ? `, dropout=${this.dropout}` : ""}${this.#merged ? ", merged" : ""})`;
  }
}

/** Replaces the child module at a dotted path of root (the module tree is its properties). */
export function replaceSubmodule(root: Module, path: string, replacement: Module): void {
  if (path === "") throw new Error("replaceSubmodule: the root itself cannot be replaced");
  const dot = path.lastIndexOf(".");
  const owner = dot < 0 ? root : root.getSubmodule(path.slice(0, dot));
  const key = dot < 0 ? path : path.slice(dot + 1);
  const record = owner as unknown as Record<string, unknown>;
  if (!(record[key] instanceof Module)) throw new Error(`replaceSubmodule: ${root.constructor.name} has no submodule at '${path}'`);
  record[key] = replacement;
}

/** Every LoRALinear of the tree with its path, in tree order. */
export function loraLayers(model: Module): [string, LoRALinear][] {
  return model.namedModules().filter((entry): entry is [string, LoRALinear] => entry[1] instanceof LoRALinear);
}

/** Paths under which the base weight of a LoRA layer is also used elsewhere (tied embeddings). */
function sharedBaseWeights(model: Module, layers: [string, LoRALinear][]): string[] {
  const uses = new Map<Parameter, string[]>();
  for (const [name, p] of model.namedParameters("", false)) uses.set(p, [...(uses.get(p) ?? []), name]);
  return layers.filter(([, layer]) => (uses.get(layer.base_layer.weight)?.length ?? 0) > 1).map(([path, layer]) => `${path} (shares its weight with ${uses.get(layer.base_layer.weight)!.filter((n) => !n.startsWith(path + ".")).join(", ")})`);
}

/**
 * Folds every LoRA layer into its base weight (PEFT's merge_adapter): forward is then as fast as the base
 * model's and gives the adapter's outputs. Refuses layers whose base weight is tied to another module,
 * since merging would change that module too.
 */
export function mergeAdapters(model: Module): void {
  const layers = loraLayers(model);
  const shared = sharedBaseWeights(model, layers.filter(([, l]) => !l.merged));
  if (shared.length > 0) {
    throw new Error(`mergeAdapters: cannot merge into a tied weight: ${shared.join("; ")}. Untie the weights first, or keep the adapter unmerged.`);
  }
  for (const [, layer] of layers) layer.merge();
}

/** Takes every merged LoRA layer back out of its base weight (PEFT's unmerge_adapter). */
export function unmergeAdapters(model: Module): void {
  for (const [, layer] of loraLayers(model)) layer.unmerge();
}

/**
 * Puts the plain base layers back in place of the LoRA layers and frees the adapters: with merge, the
 * adapters are folded in first (PEFT's merge_and_unload), else they are dropped (PEFT's unload).
 * Returns the paths that were unwrapped.
 */
export function removeAdapters(model: Module, options: { merge?: boolean } = {}): string[] {
  const layers = loraLayers(model);
  if (options.merge) mergeAdapters(model);
  else unmergeAdapters(model);
  for (const [path, layer] of layers) {
    replaceSubmodule(model, path, layer.base_layer);
    for (const p of layer.loraParameters()) p.dispose();
  }
  return layers.map(([path]) => path);
}
