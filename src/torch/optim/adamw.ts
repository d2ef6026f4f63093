// AdamW (Loshchilov & Hutter), the update of torch.optim.AdamW: decoupled decay p *= 1 - lr * wd, then Adam
// with bias corrections. One native call per group: the fused CUDA kernel where libtorch has it, else _foreach.
import { native } from "../native.js";
import { zeros, zerosLike } from "../creation.js";
import type { Tensor } from "../tensor.js";
import { checkRange, Optimizer, pickOptions, type BaseHyperparameters, type ParamGroup, type ResolvedParamGroup, type StateLayout } from "./optimizer.js";

export interface AdamWHyperparameters extends BaseHyperparameters {
  lr: number;
  /** Decay rates of the first and second moment estimates. */
  betas: [number, number];
  eps: number;
  /** Decoupled weight decay: each step multiplies the parameter by 1 - lr * weightDecay. */
  weightDecay: number;
}

export interface AdamWOptions extends Partial<AdamWHyperparameters> {
  /** Use libtorch's fused kernel for CUDA parameters when it exists (libtorch >= 2.0); other parameters use _foreach. */
  fused?: boolean;
}

export type AdamWParamGroup = ParamGroup<AdamWHyperparameters>;

// torch.optim.AdamW's defaults.
const ADAMW_DEFAULTS: AdamWHyperparameters = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 };
const STATE_NAMES = ["exp_avg", "exp_avg_sq", "step"] as const;

let fusedKernelExists: boolean | undefined;

export class AdamW extends Optimizer<AdamWHyperparameters> {
  readonly fused: boolean;

  constructor(params: Tensor[] | AdamWParamGroup[], options: AdamWOptions = {}) {
    const { fused, ...hyper } = pickOptions("AdamW", options, [...Object.keys(ADAMW_DEFAULTS), "fused"]);
    super("AdamW", params, { ...ADAMW_DEFAULTS, ...hyper } as AdamWHyperparameters);
    this.fused = (fused as boolean | undefined) ?? true;
  }

  protected get stateNames(): readonly string[] {
    return STATE_NAMES;
  }

  protected validateHyperparameters(h: AdamWHyperparameters, where: string): void {
    checkRange("AdamW", where, "lr", h.lr, 0);
    checkRange("AdamW", where, "eps", h.eps, 0);
    checkRange("AdamW", where, "weightDecay", h.weightDecay, 0);
    if (!Array.isArray(h.betas) || h.betas.length !== 2) {
      throw new Error(`AdamW: betas must be a pair [beta1, beta2] in ${where}, got ${JSON.stringify(h.betas)}`);
    }
    checkRange("AdamW", where, "betas[0]", h.betas[0], 0, 1);
    checkRange("AdamW", where, "betas[1]", h.betas[1], 0, 1);
  }

  protected stateLayout(param: Tensor, name: string): StateLayout {
    if (name === "step") return { shape: [], dtype: "float32", device: this.stepDevice(param) };
    return { shape: param.shape, dtype: param.dtype, device: param.device };
  }

  protected isCompleteState(names: string[]): boolean {
    return STATE_NAMES.every((name) => names.includes(name));
  }

  // The fused kernel reads the step count on the GPU; the _foreach path reads it on the host, as PyTorch does.
  private stepDevice(param: Tensor): string {
    fusedKernelExists ??= native.hasFusedAdamW() as boolean;
    return this.fused && fusedKernelExists && param.isCuda ? param.device : "cpu";
  }

  protected updateGroup(group: ResolvedParamGroup<AdamWHyperparameters>, params: Tensor[], grads: Tensor[]): void {
    const states = params.map((param) => this.state.get(param) ?? this.createState(param));
    native.adamwStep(
      params.map((t) => t.handle), grads.map((t) => t.handle),
      states.map((s) => s.exp_avg.handle), states.map((s) => s.exp_avg_sq.handle), states.map((s) => s.step.handle),
      group.lr, group.betas[0], group.betas[1], group.eps, group.weightDecay, this.fused,
    );
  }

  // Created on a parameter's first step, as torch.optim.AdamW does (zeros like the parameter, step 0).
  private createState(param: Tensor): Record<(typeof STATE_NAMES)[number], Tensor> {
    const state = {
      exp_avg: zerosLike(param).keep(),
      exp_avg_sq: zerosLike(param).keep(),
      step: zeros([], { dtype: "float32", device: this.stepDevice(param) }).keep(),
    };
    this.state.set(param, state);
    return state;
  }
}
