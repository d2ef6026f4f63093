// Functional ops (torch.nn.functional and friends). Each is one call into the native layer.
import { native, type Handle } from "./native.js";
import { Tensor, type DTypeLike, type Scalar, toDType } from "./tensor.js";

type Reduction = "mean" | "sum" | "none";
const opt = (t: Tensor | null | undefined): Handle | null => (t ? t.handle : null);
const pair = (v: number | number[], n: number) => (typeof v === "number" ? new Array(n).fill(v) : v);

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.cat(tensors.map((t) => t.handle), dim));
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.stack(tensors.map((t) => t.handle), dim));
}
/** Elementwise choice: condition ? a : b (each of a, b a tensor or a scalar). */
export function where(condition: Tensor, a: Tensor | Scalar, b: Tensor | Scalar): Tensor {
  return new Tensor(native.where(condition.handle, a instanceof Tensor ? a.handle : a, b instanceof Tensor ? b.handle : b, !(a instanceof Tensor), !(b instanceof Tensor)));
}
export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  return new Tensor(native.einsum(equation, operands.map((t) => t.handle)));
}
/** beta * bias + alpha * (a @ b) */
export function addmm(bias: Tensor, a: Tensor, b: Tensor, beta = 1, alpha = 1): Tensor {
  return new Tensor(native.addmm(bias.handle, a.handle, b.handle, beta, alpha));
}
export function outer(a: Tensor, b: Tensor): Tensor {
  return new Tensor(native.outer(a.handle, b.handle));
}
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}
export function minimum(a: Tensor, b: Tensor): Tensor {
  return a.minimum(b);
}
export function maximum(a: Tensor, b: Tensor): Tensor {
  return a.maximum(b);
}
export function isclose(a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-8, equalNan = false): Tensor {
  return new Tensor(native.isclose(a.handle, b.handle, rtol, atol, equalNan));
}

/** x @ weight.T + bias */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return new Tensor(native.linear(x.handle, weight.handle, opt(bias)));
}
export interface ConvOptions {
  stride?: number | number[];
  padding?: number | number[];
  dilation?: number | number[];
  groups?: number;
}
function conv(op: string, spatial: number, x: Tensor, weight: Tensor, bias: Tensor | null | undefined, o: ConvOptions): Tensor {
  return new Tensor(native[op](x.handle, weight.handle, opt(bias), pair(o.stride ?? 1, spatial), pair(o.padding ?? 0, spatial), pair(o.dilation ?? 1, spatial), o.groups ?? 1));
}
export function conv1d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvOptions = {}): Tensor {
  return conv("conv1d", 1, x, weight, bias, options);
}
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvOptions = {}): Tensor {
  return conv("conv2d", 2, x, weight, bias, options);
}
export function conv3d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvOptions = {}): Tensor {
  return conv("conv3d", 3, x, weight, bias, options);
}
export function avgPool2d(x: Tensor, kernel: number | number[], stride?: number | number[], padding: number | number[] = 0): Tensor {
  return new Tensor(native.avgPool2d(x.handle, pair(kernel, 2), pair(stride ?? kernel, 2), pair(padding, 2)));
}
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | number[]): Tensor {
  return new Tensor(native.adaptiveAvgPool2d(x.handle, pair(outputSize, 2)));
}
export function layerNorm(x: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return new Tensor(native.layerNorm(x.handle, normalizedShape, opt(weight), opt(bias), eps));
}
export function groupNorm(x: Tensor, groups: number, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return new Tensor(native.groupNorm(x.handle, groups, opt(weight), opt(bias), eps));
}
/** RMS norm over the last dim, computed in float32 and cast back (transformers' LlamaRMSNorm). */
export function rmsNorm(x: Tensor, weight?: Tensor | null, eps = 1e-6): Tensor {
  return new Tensor(native.rmsNorm(x.handle, opt(weight), eps));
}

export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  return new Tensor(native.gelu(x.handle, approximate));
}
/** CLIP's quick_gelu: x * sigmoid(1.702 x) */
export function quickGelu(x: Tensor): Tensor {
  return new Tensor(native.quickGelu(x.handle));
}
export const silu = (x: Tensor) => x.silu();
export const relu = (x: Tensor) => x.relu();
export const sigmoid = (x: Tensor) => x.sigmoid();
export const tanh = (x: Tensor) => x.tanh();
export function logSigmoid(x: Tensor): Tensor {
  return new Tensor(native.logSigmoid(x.handle));
}
export function softplus(x: Tensor): Tensor {
  return new Tensor(native.softplus(x.handle));
}
export function softmax(x: Tensor, dim: number, dtype?: DTypeLike): Tensor {
  return x.softmax(dim, dtype);
}
export function logSoftmax(x: Tensor, dim: number, dtype?: DTypeLike): Tensor {
  return x.logSoftmax(dim, dtype);
}
/** Inverted dropout: zeroes with probability p and scales by 1/(1-p) when training. */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (p < 0 || p > 1) throw new Error(`dropout probability must be in [0, 1], got ${p}`);
  return new Tensor(native.dropout(x.handle, p, training));
}
export function embedding(weight: Tensor, indices: Tensor, paddingIdx?: number): Tensor {
  return new Tensor(native.embedding(weight.handle, indices.handle, paddingIdx ?? null));
}
export function oneHot(indices: Tensor, numClasses: number): Tensor {
  return new Tensor(native.oneHot(indices.handle, numClasses));
}
export function pad(x: Tensor, pads: number[], mode: "constant" | "reflect" | "replicate" = "constant", value = 0): Tensor {
  return new Tensor(native.pad(x.handle, pads, mode, value));
}
export interface InterpolateOptions {
  size: [number, number];
  mode?: "nearest" | "bilinear" | "bicubic";
  alignCorners?: boolean;
  antialias?: boolean;
}
/** Resizes a [N, C, H, W] tensor (bicubic with antialias reproduces PIL-like downscaling). */
export function interpolate(x: Tensor, options: InterpolateOptions): Tensor {
  return new Tensor(native.interpolate(x.handle, options.size, options.mode ?? "nearest", options.alignCorners ?? false, options.antialias ?? false));
}

export interface CrossEntropyOptions {
  weight?: Tensor;
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
}
/** Cross entropy of logits [N, C] (or [N, C, d...]) against class indices, ignoring ignoreIndex (default -100). */
export function crossEntropy(logits: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  return new Tensor(native.crossEntropy(logits.handle, target.handle, opt(options.weight), options.reduction ?? "mean", options.ignoreIndex ?? -100, options.labelSmoothing ?? 0));
}
export function nllLoss(logProbs: Tensor, target: Tensor, options: Omit<CrossEntropyOptions, "labelSmoothing"> = {}): Tensor {
  return new Tensor(native.nllLoss(logProbs.handle, target.handle, opt(options.weight), options.reduction ?? "mean", options.ignoreIndex ?? -100));
}
export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, options: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {}): Tensor {
  return new Tensor(native.binaryCrossEntropyWithLogits(logits.handle, target.handle, opt(options.weight), opt(options.posWeight), options.reduction ?? "mean"));
}
export function l1Loss(input: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor {
  return new Tensor(native.l1Loss(input.handle, target.handle, reduction));
}
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor {
  return new Tensor(native.mseLoss(input.handle, target.handle, reduction));
}
export function smoothL1Loss(input: Tensor, target: Tensor, reduction: Reduction = "mean", beta = 1): Tensor {
  return new Tensor(native.smoothL1Loss(input.handle, target.handle, reduction, beta));
}
/** x / max(||x||_p, eps) along dim (torch.nn.functional.normalize). */
export function normalize(x: Tensor, p = 2, dim = -1, eps = 1e-12): Tensor {
  return new Tensor(native.normalize(x.handle, p, dim, eps));
}
export function cosineSimilarity(a: Tensor, b: Tensor, dim = 1, eps = 1e-8): Tensor {
  return new Tensor(native.cosineSimilarity(a.handle, b.handle, dim, eps));
}

export interface AttentionOptions {
  /** Boolean (true = may attend) or additive float mask, broadcastable to [B, H, L, S]. */
  mask?: Tensor | null;
  dropoutP?: number;
  isCausal?: boolean;
  /** Defaults to 1/sqrt(head_dim). */
  scale?: number;
}
/**
 * softmax(q k^T * scale + mask) v for q [B, Hq, L, D], k and v [B, Hkv, S, D]; Hq may be a multiple of
 * Hkv (grouped-query attention). Uses libtorch's fused kernels (flash / memory-efficient on CUDA) when
 * the build has them, else the written-out reference.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  return new Tensor(native.scaledDotProductAttention(q.handle, k.handle, v.handle, opt(options.mask), options.dropoutP ?? 0, options.isCausal ?? false, options.scale ?? null));
}
/** The written-out attention (matmul, mask, softmax, matmul), on every build. */
export function scaledDotProductAttentionReference(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  return new Tensor(native.scaledDotProductAttentionReference(q.handle, k.handle, v.handle, opt(options.mask), options.dropoutP ?? 0, options.isCausal ?? false, options.scale ?? null));
}

export { toDType };
