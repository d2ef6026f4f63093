// Grad mode, autograd.grad, autocast regions and random-number state.
import { native } from "./native.js";
import { Tensor, toDType, type DTypeLike } from "./tensor.js";

function withGradMode<T>(enabled: boolean, fn: () => T): T {
  const previous = native.setGradEnabled(enabled) as boolean;
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error("noGrad()/enableGrad() need a synchronous function");
    return result;
  } finally {
    native.setGradEnabled(previous);
  }
}
/** Runs fn without recording autograd history (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn);
}
/** Runs fn with autograd recording on (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn);
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export interface GradOptions {
  gradOutputs?: Tensor[];
  retainGraph?: boolean;
  createGraph?: boolean;
  allowUnused?: boolean;
}
/** Gradients of outputs with respect to inputs, without touching .grad (torch.autograd.grad). */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], options: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const handles = native.autogradGrad(
    outs.map((t) => t.handle), ins.map((t) => t.handle), options.gradOutputs?.map((t) => t.handle) ?? null,
    options.retainGraph ?? options.createGraph ?? false, options.createGraph ?? false, options.allowUnused ?? false,
  ) as unknown[];
  return handles.map((x) => (x === null ? null : new Tensor(x as never)));
}

/**
 * Runs fn with autocast on (torch.autocast): matmuls and convolutions run in dtype (bf16 / fp16) while
 * reductions and norms stay in float32. Regions nest; the outermost one clears the cast cache.
 */
export function autocast<T>(device: "cuda" | "cpu", dtype: DTypeLike, fn: () => T): T {
  const [wasEnabled, previousDtype] = native.autocastEnter(device, toDType(dtype)) as [boolean, string];
  try {
    const result = fn();
    if (result instanceof Promise) throw new Error("autocast() needs a synchronous function");
    return result;
  } finally {
    native.autocastExit(device, wasEnabled, previousDtype);
  }
}
export function isAutocastEnabled(device: "cuda" | "cpu" = "cuda"): boolean {
  return native.isAutocastEnabled(device);
}

/** Seeds the CPU generator and every CUDA generator (torch.manual_seed). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
/** The generator state of a device, for exact resume. */
export function getRngState(device = "cpu"): Buffer {
  return native.getRngState(device);
}
export function setRngState(state: Buffer, device = "cpu"): void {
  native.setRngState(device, state);
}
