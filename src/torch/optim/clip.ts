// Gradient clipping by total norm (torch.nn.utils.clip_grad_norm_).
import { native } from "../native.js";
import { Tensor } from "../tensor.js";

/**
 * Scales the gradients of params in place so that their total normType-norm is at most maxNorm
 * (coefficient min(1, maxNorm / (norm + 1e-6))) and returns the total norm before clipping, as a float32
 * scalar tensor (no host sync; call .item() to read it). Parameters whose grad is null are skipped.
 * normType may be Infinity (the largest absolute value).
 */
export function clipGradNorm(params: Tensor[] | Tensor, maxNorm: number, normType = 2): Tensor {
  if (typeof maxNorm !== "number" || Number.isNaN(maxNorm) || maxNorm < 0) {
    throw new Error(`clipGradNorm: maxNorm must be a number >= 0, got ${String(maxNorm)}`);
  }
  if (typeof normType !== "number" || Number.isNaN(normType) || normType <= 0) {
    throw new Error(`clipGradNorm: normType must be > 0 (2 for the Euclidean norm, Infinity for the max), got ${String(normType)}`);
  }
  const list = params instanceof Tensor ? [params] : params;
  const grads: Tensor[] = [];
  try {
    for (const param of list) {
      const grad = param.grad;
      if (grad !== null) grads.push(grad);
    }
    return new Tensor(native.clipGradNorm(grads.map((g) => g.handle), maxNorm, normType));
  } finally {
    for (const grad of grads) grad.dispose();
  }
}
