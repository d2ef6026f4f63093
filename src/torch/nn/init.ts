// Weight initialisation (torch.nn.init): in-place fills under noGrad, with PyTorch's fan and gain rules.
import { Tensor, tidy } from "../tensor.js";
import { noGrad } from "../autograd.js";
import { empty } from "../creation.js";
import { where } from "../functional.js";

let randomInitSkipped = 0;

/**
 * Runs fn with the random initialisers turned into no-ops, so building a model whose weights are loaded
 * right after does not pay for random numbers (transformers' no_init_weights). Constant fills (ones /
 * zeros of norms, padding rows) still happen. Weights not loaded afterwards hold arbitrary values.
 */
export function skipRandomInit<T>(fn: () => T): T {
  randomInitSkipped++;
  try {
    return fn();
  } finally {
    randomInitSkipped--;
  }
}
export function isRandomInitSkipped(): boolean {
  return randomInitSkipped > 0;
}

/** fan_in and fan_out of a weight [out, in, ...kernel] as torch.nn.init computes them. */
export function calculateFanInAndFanOut(t: Tensor): { fanIn: number; fanOut: number } {
  const shape = t.shape;
  if (shape.length < 2) throw new Error(`init: fan in and fan out need a tensor of at least 2 dims, got shape [${shape}]`);
  const receptiveField = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptiveField, fanOut: shape[0] * receptiveField };
}

export type Nonlinearity = "linear" | "conv1d" | "conv2d" | "conv3d" | "sigmoid" | "tanh" | "relu" | "leaky_relu" | "selu";

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain); param is leaky_relu's slope. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear": case "conv1d": case "conv2d": case "conv3d": case "sigmoid": return 1;
    case "tanh": return 5 / 3;
    case "relu": return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case "selu": return 3 / 4;
    default: throw new Error(`calculateGain: unknown nonlinearity '${nonlinearity}' (use linear, conv1d/2d/3d, sigmoid, tanh, relu, leaky_relu, selu)`);
  }
}

/** Fills t with U(low, high). */
export function uniform_(t: Tensor, low = 0, high = 1): Tensor {
  if (isRandomInitSkipped()) return t;
  return noGrad(() => t.uniform_(low, high));
}
/** Fills t with N(mean, std^2). */
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  if (isRandomInitSkipped()) return t;
  return noGrad(() => t.normal_(mean, std));
}
export function constant_(t: Tensor, value: number): Tensor {
  return noGrad(() => t.fill_(value));
}
export function zeros_(t: Tensor): Tensor {
  return noGrad(() => t.zero_());
}
export function ones_(t: Tensor): Tensor {
  return constant_(t, 1);
}

export interface KaimingOptions {
  /** Negative slope of the leaky_relu after this layer (0 for relu). */
  a?: number;
  mode?: "fan_in" | "fan_out";
  nonlinearity?: Nonlinearity;
}
function kaimingStd(t: Tensor, options: KaimingOptions): number {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  const fan = (options.mode ?? "fan_in") === "fan_in" ? fanIn : fanOut;
  const gain = calculateGain(options.nonlinearity ?? "leaky_relu", options.a ?? 0);
  return gain / Math.sqrt(fan);
}
/** He uniform init: U(-b, b) with b = gain * sqrt(3 / fan). Linear and Conv use a = sqrt(5), giving b = 1/sqrt(fan_in). */
export function kaimingUniform_(t: Tensor, options: KaimingOptions = {}): Tensor {
  const bound = Math.sqrt(3) * kaimingStd(t, options);
  return uniform_(t, -bound, bound);
}
/** He normal init: N(0, gain^2 / fan). */
export function kaimingNormal_(t: Tensor, options: KaimingOptions = {}): Tensor {
  return normal_(t, 0, kaimingStd(t, options));
}
/** Glorot uniform init: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}
/** Glorot normal init: N(0, gain^2 * 2 / (fan_in + fan_out)). */
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = calculateFanInAndFanOut(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

/**
 * Fills t with N(mean, std^2) truncated to [low, high] (torch.nn.init.trunc_normal_; ViT and SigLIP heads).
 * Samples outside the interval are redrawn until none are left, which is exact for the truncated law.
 */
export function truncNormal_(t: Tensor, mean = 0, std = 1, low = -2, high = 2): Tensor {
  if (!(low < high)) throw new Error(`truncNormal_: need low < high, got [${low}, ${high}]`);
  if (isRandomInitSkipped()) return t;
  noGrad(() =>
    tidy(() => {
      const draw = () => empty(t.shape, { dtype: t.dtype, device: t.device }).normal_(mean, std);
      let sample = draw();
      // Each round redraws only the rejected entries; 200 rounds leave none unless [low, high] is far in the tail.
      for (let round = 0; round < 200; round++) {
        const outside = sample.lt(low).logicalOr(sample.gt(high));
        if (!outside.any().item()) break;
        sample = where(outside, draw(), sample);
      }
      t.copy_(sample.clamp(low, high));
    }),
  );
  return t;
}
