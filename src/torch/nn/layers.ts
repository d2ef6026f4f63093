// Layers with PyTorch's parameter names, shapes and default initialisation, so checkpoints load by name.
import { Tensor, tidy, type DTypeLike, type DeviceLike } from "../tensor.js";
import { empty } from "../creation.js";
import { noGrad } from "../autograd.js";
import * as F from "../functional.js";
import { Module, Parameter } from "./module.js";
import * as init from "./init.js";

export interface LayerOptions {
  dtype?: DTypeLike;
  device?: DeviceLike;
}

/** A new Parameter of the given shape, filled by fill (under noGrad, before it requires grad). */
function createParameter(shape: number[], options: LayerOptions, fill: (t: Tensor) => void): Parameter {
  // Inside skipRandomInit (a loader about to read every weight) placeholders live on the meta device:
  // shapes without storage, so building a 7B model before loading it costs no host memory.
  const device = options.device ?? (init.isRandomInitSkipped() ? "meta" : "cpu");
  const t = empty(shape, { dtype: options.dtype ?? "float32", device });
  try {
    noGrad(() => fill(t));
  } catch (error) {
    t.dispose();
    throw error;
  }
  return new Parameter(t);
}

const uniformBound = (bound: number) => (t: Tensor) => init.uniform_(t, -bound, bound);

function checkPositiveInteger(what: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${what} must be a positive integer, got ${value}`);
}

// ---- linear and embedding ----

/** y = x W^T + b with W [outFeatures, inFeatures]; W and b ~ U(-1/sqrt(in), 1/sqrt(in)) as torch.nn.Linear. */
export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, options: LayerOptions & { bias?: boolean } = {}) {
    super();
    checkPositiveInteger("Linear inFeatures", inFeatures);
    checkPositiveInteger("Linear outFeatures", outFeatures);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = createParameter([outFeatures, inFeatures], options, uniformBound(bound));
    this.bias = options.bias ?? true ? createParameter([outFeatures], options, uniformBound(bound)) : null;
  }
  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

/** A lookup table weight [numEmbeddings, embeddingDim] ~ N(0, 1); the paddingIdx row starts at zero and gets no gradient. */
export class Embedding extends Module {
  weight: Parameter;
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly paddingIdx: number | null;

  constructor(numEmbeddings: number, embeddingDim: number, options: LayerOptions & { paddingIdx?: number | null } = {}) {
    super();
    checkPositiveInteger("Embedding numEmbeddings", numEmbeddings);
    checkPositiveInteger("Embedding embeddingDim", embeddingDim);
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    let paddingIdx = options.paddingIdx ?? null;
    if (paddingIdx !== null) {
      if (paddingIdx < -numEmbeddings || paddingIdx >= numEmbeddings) {
        throw new Error(`Embedding paddingIdx ${paddingIdx} is outside [-${numEmbeddings}, ${numEmbeddings})`);
      }
      if (paddingIdx < 0) paddingIdx += numEmbeddings;
    }
    this.paddingIdx = paddingIdx;
    this.weight = createParameter([numEmbeddings, embeddingDim], options, (t) => {
      init.normal_(t);
      if (paddingIdx !== null) {
        const row = t.select(0, paddingIdx);
        row.zero_();
        row.dispose();
      }
    });
  }
  forward(indices: Tensor): Tensor {
    return F.embedding(this.weight, indices, this.paddingIdx ?? undefined);
  }
}

// ---- normalisation ----

/** Normalises over the trailing normalizedShape dims; weight ones, bias zeros (torch.nn.LayerNorm). */
export class LayerNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly normalizedShape: number[];
  readonly eps: number;

  constructor(normalizedShape: number | number[], options: LayerOptions & { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === "number" ? [normalizedShape] : [...normalizedShape];
    for (const d of this.normalizedShape) checkPositiveInteger("LayerNorm normalizedShape entry", d);
    this.eps = options.eps ?? 1e-5;
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine ? createParameter(this.normalizedShape, options, init.ones_) : null;
    this.bias = affine && (options.bias ?? true) ? createParameter(this.normalizedShape, options, init.zeros_) : null;
  }
  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

/**
 * Root-mean-square norm over the last dim with weight ones (transformers' LlamaRMSNorm): the normalisation
 * runs in float32 (float64 for float64 input) and is cast back to the input dtype before the weight multiplies it.
 */
export class RMSNorm extends Module {
  weight: Parameter;
  readonly eps: number;

  constructor(dim: number, options: LayerOptions & { eps?: number } = {}) {
    super();
    checkPositiveInteger("RMSNorm dim", dim);
    this.eps = options.eps ?? 1e-6;
    this.weight = createParameter([dim], options, init.ones_);
  }
  forward(x: Tensor): Tensor {
    // float64 stays float64 (gradient checks, references) instead of dropping to float32 like the fused op.
    if (x.dtype === "float64") return tidy(() => x.mul(x.square().mean(-1, true).add(this.eps).rsqrt()).mul(this.weight));
    return F.rmsNorm(x, this.weight, this.eps);
  }
}

/** Normalises channel groups of [N, C, ...] input; per-channel weight ones, bias zeros (torch.nn.GroupNorm). */
export class GroupNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly numGroups: number;
  readonly numChannels: number;
  readonly eps: number;

  constructor(numGroups: number, numChannels: number, options: LayerOptions & { eps?: number; affine?: boolean } = {}) {
    super();
    checkPositiveInteger("GroupNorm numGroups", numGroups);
    checkPositiveInteger("GroupNorm numChannels", numChannels);
    if (numChannels % numGroups !== 0) throw new Error(`GroupNorm: numChannels ${numChannels} is not divisible by numGroups ${numGroups}`);
    this.numGroups = numGroups;
    this.numChannels = numChannels;
    this.eps = options.eps ?? 1e-5;
    const affine = options.affine ?? true;
    this.weight = affine ? createParameter([numChannels], options, init.ones_) : null;
    this.bias = affine ? createParameter([numChannels], options, init.zeros_) : null;
  }
  forward(x: Tensor): Tensor {
    return F.groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}

// ---- convolutions ----

export interface ConvLayerOptions extends LayerOptions {
  stride?: number | number[];
  /** Zero padding per side, or "valid" (none) or "same" (output size = input size; stride 1 only). */
  padding?: number | number[] | "valid" | "same";
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
}

function expand(what: string, value: number | number[], n: number): number[] {
  const out = typeof value === "number" ? new Array<number>(n).fill(value) : [...value];
  if (out.length !== n) throw new Error(`${what} needs ${n} values, got [${out}]`);
  return out;
}

/** Shared by Conv1d/2d/3d: weight [out, in/groups, ...kernel] and bias [out] ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
abstract class ConvNd extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number[];
  readonly stride: number[];
  readonly dilation: number[];
  readonly groups: number;
  /** Symmetric padding passed to the convolution. */
  readonly padding: number[];
  /** Extra [left, right] padding per spatial dim (torch order for F.pad) when "same" needs it to be asymmetric, else null. */
  readonly #asymmetricPad: number[] | null = null;

  constructor(spatialDims: 1 | 2 | 3, inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvLayerOptions) {
    super();
    const name = `Conv${spatialDims}d`;
    checkPositiveInteger(`${name} inChannels`, inChannels);
    checkPositiveInteger(`${name} outChannels`, outChannels);
    const groups = options.groups ?? 1;
    checkPositiveInteger(`${name} groups`, groups);
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(`${name}: inChannels ${inChannels} and outChannels ${outChannels} must both be divisible by groups ${groups}`);
    }
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.groups = groups;
    this.kernelSize = expand(`${name} kernelSize`, kernelSize, spatialDims);
    this.stride = expand(`${name} stride`, options.stride ?? 1, spatialDims);
    this.dilation = expand(`${name} dilation`, options.dilation ?? 1, spatialDims);
    const padding = options.padding ?? 0;
    if (padding === "valid") {
      this.padding = new Array<number>(spatialDims).fill(0);
    } else if (padding === "same") {
      if (this.stride.some((s) => s !== 1)) throw new Error(`${name}: padding "same" needs stride 1, got stride [${this.stride}]`);
      // Total padding d*(k-1) per dim, the odd pixel going to the right/bottom as in PyTorch.
      const totals = this.kernelSize.map((k, i) => this.dilation[i] * (k - 1));
      const left = totals.map((t) => Math.floor(t / 2));
      this.padding = left;
      if (totals.some((t) => t % 2 === 1)) {
        const pads: number[] = [];
        for (let i = spatialDims - 1; i >= 0; i--) pads.push(0, totals[i] - 2 * left[i]);
        this.#asymmetricPad = pads;
      }
    } else {
      this.padding = expand(`${name} padding`, padding, spatialDims);
    }
    const fanIn = (inChannels / groups) * this.kernelSize.reduce((a, b) => a * b, 1);
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = createParameter([outChannels, inChannels / groups, ...this.kernelSize], options, uniformBound(bound));
    this.bias = options.bias ?? true ? createParameter([outChannels], options, uniformBound(bound)) : null;
  }

  protected convolve(x: Tensor, op: typeof F.conv2d): Tensor {
    const conv = (input: Tensor) => op(input, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
    if (this.#asymmetricPad === null) return conv(x);
    const padded = F.pad(x, this.#asymmetricPad);
    try {
      return conv(padded);
    } finally {
      padded.dispose();
    }
  }
}

/** 1-d convolution over [N, C, L] (torch.nn.Conv1d). */
export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvLayerOptions = {}) {
    super(1, inChannels, outChannels, kernelSize, options);
  }
  forward(x: Tensor): Tensor {
    return this.convolve(x, F.conv1d);
  }
}

/** 2-d convolution over [N, C, H, W] (torch.nn.Conv2d): patch embeddings of CLIP / SigLIP. */
export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvLayerOptions = {}) {
    super(2, inChannels, outChannels, kernelSize, options);
  }
  forward(x: Tensor): Tensor {
    return this.convolve(x, F.conv2d);
  }
}

/** 3-d convolution over [N, C, T, H, W] (torch.nn.Conv3d): Qwen2-VL's temporal patch embedding. */
export class Conv3d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], options: ConvLayerOptions = {}) {
    super(3, inChannels, outChannels, kernelSize, options);
  }
  forward(x: Tensor): Tensor {
    return this.convolve(x, F.conv3d);
  }
}

// ---- dropout and identity ----

/** Zeroes elements with probability p and scales the rest by 1/(1-p) in training mode; identity in eval mode. */
export class Dropout extends Module {
  readonly p: number;
  constructor(p = 0.5) {
    super();
    if (!(p >= 0 && p <= 1)) throw new Error(`Dropout probability must be in [0, 1], got ${p}`);
    this.p = p;
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
}

/** Returns its input (the same Tensor object). */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

// ---- activations ----

export type GeluApproximation = "none" | "tanh";

/** Gaussian error linear unit, exact (erf) or with the tanh approximation (torch.nn.GELU). */
export class GELU extends Module {
  readonly approximate: GeluApproximation;
  constructor(options: { approximate?: GeluApproximation } | GeluApproximation = {}) {
    super();
    this.approximate = typeof options === "string" ? options : options.approximate ?? "none";
    if (this.approximate !== "none" && this.approximate !== "tanh") throw new Error(`GELU approximate must be "none" or "tanh", got "${this.approximate}"`);
  }
  forward(x: Tensor): Tensor {
    return F.gelu(x, this.approximate);
  }
}
/** x * sigmoid(1.702 x), CLIP's activation (transformers' QuickGELUActivation). */
export class QuickGELU extends Module {
  forward(x: Tensor): Tensor {
    return F.quickGelu(x);
  }
}
/** x * sigmoid(x) (also called swish). */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return x.silu();
  }
}
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}
export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return x.tanh();
  }
}
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
}

/** An activation module: a Module with forward(x). */
export type ActivationModule = Module & { forward(x: Tensor): Tensor };

// transformers' ACT2FN names (activations.py); gelu_new, gelu_fast and gelu_pytorch_tanh are all the tanh approximation.
const ACTIVATIONS: Record<string, () => ActivationModule> = {
  gelu: () => new GELU(),
  gelu_python: () => new GELU(),
  gelu_new: () => new GELU({ approximate: "tanh" }),
  gelu_fast: () => new GELU({ approximate: "tanh" }),
  gelu_pytorch_tanh: () => new GELU({ approximate: "tanh" }),
  quick_gelu: () => new QuickGELU(),
  silu: () => new SiLU(),
  swish: () => new SiLU(),
  relu: () => new ReLU(),
  tanh: () => new Tanh(),
  sigmoid: () => new Sigmoid(),
  linear: () => new Identity(),
};

/** Names accepted by activation() / activationFn(). */
export const ACTIVATION_NAMES: readonly string[] = Object.keys(ACTIVATIONS);

/** The activation module for a Hugging Face config's hidden_act / hidden_activation name. */
export function activation(name: string): ActivationModule {
  const make = ACTIVATIONS[name];
  if (!make) throw new Error(`unknown activation '${name}' (hidden_act); known: ${ACTIVATION_NAMES.join(", ")}`);
  return make();
}

/** The activation as a function, for model code that does not keep it as a submodule. */
export function activationFn(name: string): (x: Tensor) => Tensor {
  const module = activation(name);
  return (x) => module.forward(x);
}
