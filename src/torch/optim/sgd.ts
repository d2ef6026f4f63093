// SGD with momentum, dampening, Nesterov and (coupled) weight decay, the update of torch.optim.SGD.
import { native, type Handle } from "../native.js";
import { Tensor } from "../tensor.js";
import { checkRange, Optimizer, pickOptions, type BaseHyperparameters, type ParamGroup, type ResolvedParamGroup, type StateLayout } from "./optimizer.js";

export interface SGDHyperparameters extends BaseHyperparameters {
  lr: number;
  momentum: number;
  dampening: number;
  /** L2 penalty added to the gradient (g += weightDecay * p), as torch.optim.SGD. */
  weightDecay: number;
  nesterov: boolean;
}

export type SGDOptions = Partial<SGDHyperparameters> & { lr: number };
export type SGDParamGroup = ParamGroup<SGDHyperparameters>;

const SGD_DEFAULTS: Omit<SGDHyperparameters, "lr"> = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false };

export class SGD extends Optimizer<SGDHyperparameters> {
  constructor(params: Tensor[] | SGDParamGroup[], options: SGDOptions) {
    const hyper = pickOptions("SGD", options, ["lr", ...Object.keys(SGD_DEFAULTS)]);
    super("SGD", params, { ...SGD_DEFAULTS, ...hyper } as SGDHyperparameters);
  }

  protected get stateNames(): readonly string[] {
    return ["momentum_buffer"];
  }

  protected validateHyperparameters(h: SGDHyperparameters, where: string): void {
    checkRange("SGD", where, "lr", h.lr, 0);
    checkRange("SGD", where, "momentum", h.momentum, 0);
    checkRange("SGD", where, "weightDecay", h.weightDecay, 0);
    checkRange("SGD", where, "dampening", h.dampening, -Infinity);
    if (typeof h.nesterov !== "boolean") throw new Error(`SGD: nesterov must be true or false in ${where}`);
    if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
      throw new Error(`SGD: Nesterov momentum needs momentum > 0 and dampening 0 in ${where} (got momentum ${h.momentum}, dampening ${h.dampening})`);
    }
  }

  protected stateLayout(param: Tensor): StateLayout {
    return { shape: param.shape, dtype: param.dtype, device: param.device };
  }

  protected isCompleteState(): boolean {
    return true;
  }

  protected updateGroup(group: ResolvedParamGroup<SGDHyperparameters>, params: Tensor[], grads: Tensor[]): void {
    const buffers = params.map((param) => this.state.get(param)?.momentum_buffer?.handle ?? null);
    const updated = native.sgdStep(
      params.map((t) => t.handle), grads.map((t) => t.handle), buffers,
      group.lr, group.momentum, group.dampening, group.weightDecay, group.nesterov,
    ) as (Handle | null)[];
    // The native step returns a new handle on each buffer (the same storage when it existed): keep the new, free the old.
    updated.forEach((handle, i) => {
      if (handle === null) return;
      const buffer = new Tensor(handle).keep();
      this.state.get(params[i])?.momentum_buffer?.dispose();
      this.state.set(params[i], { momentum_buffer: buffer });
    });
  }
}
