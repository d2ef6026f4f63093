// LoRA (Hu et al., 2021) in PEFT's layout: a Linear is swapped in place for a LoRALinear holding the frozen
// `base_layer` and the trainable `lora_A` [r, in] / `lora_B` [out, r], so that state-dict paths are PEFT's
// (`q_proj.base_layer.weight`, `q_proj.lora_A.weight`) and saved adapters load in PEFT and back.
import { Tensor, tidy, noGrad } from "../torch/index.js";
import { Module, Linear, Dropout, Identity, Parameter } from "../torch/nn/index.js";
import * as init from "../torch/nn/init.js";

export interface LoRAOptions {
  r: number;
  alpha: number;
  dropout?: number;
  /** scaling alpha / sqrt(r) (rsLoRA, Kalajdzievski 2023) instead of alpha / r */
  rslora?: boolean;
}

/** The factor PEFT multiplies B(A(x)) by. */
export function loraScaling(options: LoRAOptions): number {
  return options.rslora ? options.alpha / Math.sqrt(options.r) : options.alpha / options.r;
}

export class LoRALinear extends Module {
  base_layer: Linear;
  lora_dropout: Dropout | Identity;
  lora_A: Linear;
  lora_B: Linear;
  readonly r: number;
  readonly alpha: number;
  readonly rslora: boolean;
  readonly scaling: number;
  /** true while B·A·scaling is folded into base_layer.weight (forward then skips the adapter). */
  merged = false;

  constructor(base: Linear, options: LoRAOptions) {
    super();
    if (!Number.isInteger(options.r) || options.r <= 0) throw new Error(`LoRA r must be a positive integer, got ${options.r}`);
    if (!(options.alpha > 0)) throw new Error(`LoRA alpha must be positive, got ${options.alpha}`);
    const dropout = options.dropout ?? 0;
    this.base_layer = base;
    this.lora_dropout = dropout > 0 ? new Dropout(dropout) : new Identity();
    const where = { dtype: base.weight.dtype, device: base.weight.device };
    // PEFT's default init: A as nn.Linear's kaiming-uniform(a = sqrt(5)), B zeros, so the adapter starts as a no-op.
    this.lora_A = new Linear(base.inFeatures, options.r, { bias: false, ...where });
    this.lora_B = new Linear(options.r, base.outFeatures, { bias: false, ...where });
    init.zeros_(this.lora_B.weight);
    this.r = options.r;
    this.alpha = options.alpha;
    this.rslora = options.rslora ?? false;
    this.scaling = loraScaling(options);
    base.freeze();
  }

  get inFeatures(): number {
    return this.base_layer.inFeatures;
  }
  get outFeatures(): number {
    return this.base_layer.outFeatures;
  }

  forward(x: Tensor): Tensor {
    if (this.merged) return this.base_layer.forward(x);
    return tidy(() => {
      const update = this.lora_B.forward(this.lora_A.forward(this.lora_dropout.forward(x)));
      return this.base_layer.forward(x).add(update.mul(this.scaling));
    });
  }

  /** B·A·scaling, the change this adapter makes to base_layer.weight. */
  deltaWeight(): Tensor {
    return noGrad(() => tidy(() => this.lora_B.weight.matmul(this.lora_A.weight).mul(this.scaling)));
  }

  merge(): void {
    if (this.merged) return;
    noGrad(() => tidy(() => { this.base_layer.weight.copy_(this.base_layer.weight.add(this.deltaWeight().to(this.base_layer.weight.dtype))); }));
    this.merged = true;
  }

  unmerge(): void {
    if (!this.merged) return;
    noGrad(() => tidy(() => { this.base_layer.weight.copy_(this.base_layer.weight.sub(this.deltaWeight().to(this.base_layer.weight.dtype))); }));
    this.merged = false;
  }

  /** The adapter's own trainable parameters. */
  loraParameters(): Parameter[] {
    return [this.lora_A.weight, this.lora_B.weight];
  }
}

/** Replaces the child at a dotted path of root (the module tree is its properties). */
export function replaceSubmodule(root: Module, path: string, replacement: Module): void {
  const dot = path.lastIndexOf(".");
  const owner = dot < 0 ? root : root.getSubmodule(path.slice(0, dot));
  const key = dot < 0 ? path : path.slice(dot + 1);
  if (!((owner as unknown as Record<string, unknown>)[key] instanceof Module)) throw new Error(`no submodule at '${path}'`);
  (owner as unknown as Record<string, unknown>)[key] = replacement;
}

/** Every LoRALinear in the tree, by path. */
export function loraLayers(model: Module): [string, LoRALinear][] {
  return model.namedModules().filter((entry): entry is [string, LoRALinear] => entry[1] instanceof LoRALinear);
}

export function mergeAdapters(model: Module): void {
  for (const [, layer] of loraLayers(model)) layer.merge();
}

export function unmergeAdapters(model: Module): void {
  for (const [, layer] of loraLayers(model)) layer.unmerge();
}
