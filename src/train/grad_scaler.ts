// Dynamic loss scaling for fp16 autocast (torch.amp.GradScaler's rule): the loss is multiplied by `scale` before
// backward so small fp16 gradients do not flush to zero; a step whose gradients overflow is skipped and the scale
// halved; after growthInterval good steps in a row it doubles.
import { noGrad } from "../torch/autograd.js";
import type { Tensor } from "../torch/tensor.js";

export interface GradScalerState {
  scale: number;
  goodSteps: number;
}

export class GradScaler {
  scale: number;
  goodSteps = 0;
  readonly growthFactor = 2;
  readonly backoffFactor = 0.5;
  readonly growthInterval: number;

  constructor(initialScale = 65536, growthInterval = 2000) {
    this.scale = initialScale;
    this.growthInterval = growthInterval;
  }

  /** Divides every gradient by the scale, before clipping and the finite check. */
  unscale(params: Tensor[]): void {
    const inverse = 1 / this.scale;
    noGrad(() => {
      for (const param of params) {
        const grad = param.grad;
        if (grad === null) continue;
        const unscaled = grad.mul(inverse);
        param.grad = unscaled;
        unscaled.dispose();
        grad.dispose();
      }
    });
  }

  /** After a step: overflow halves the scale (the step was skipped); a good step counts towards growth. */
  update(overflow: boolean): void {
    if (overflow) {
      this.scale *= this.backoffFactor;
      this.goodSteps = 0;
    } else if (++this.goodSteps >= this.growthInterval) {
      this.scale *= this.growthFactor;
      this.goodSteps = 0;
    }
  }

  stateDict(): GradScalerState {
    return { scale: this.scale, goodSteps: this.goodSteps };
  }
  loadStateDict(state: GradScalerState): void {
    this.scale = state.scale;
    this.goodSteps = state.goodSteps;
  }
}
