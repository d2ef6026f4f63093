// Rotary position embeddings (RoPE) as transformers computes them: the rope types of ROPE_INIT_FUNCTIONS
// (default, linear, dynamic, llama3) from modeling_rope_utils.py, the dynamic-NTK update done in the
// forward pass, and apply_rotary_pos_emb with rotate_half.
import { Tensor, tensor, cat, noGrad, keep, tidy, type DType } from "../../torch/index.js";
import { Module } from "../../torch/nn/index.js";
import { ConfigReader, isJsonObject } from "./config_reader.js";

export const ROPE_TYPES = ["default", "linear", "dynamic", "llama3"] as const;
export type RopeType = (typeof ROPE_TYPES)[number];

/** The standardised rope parameters (transformers 5's config.rope_parameters). */
export interface RopeParameters {
  rope_type: RopeType;
  rope_theta: number;
  /** linear / dynamic / llama3: how much longer than pretraining the context may be. */
  factor?: number;
  /** llama3: the pretraining context length (8192 for Llama 3.1). */
  original_max_position_embeddings?: number;
  low_freq_factor?: number;
  high_freq_factor?: number;
  /** Fraction of head_dim that is rotated (1 when absent). */
  partial_rotary_factor?: number;
}

export interface ReadRopeOptions {
  /** The model's rope_theta default (transformers' RotaryEmbeddingConfigMixin.default_theta: 10000). */
  defaultTheta?: number;
  maxPositionEmbeddings: number;
}

/**
 * Reads the rope settings of a config in either spelling and standardises them as transformers 5 does
 * (RotaryEmbeddingConfigMixin.convert_rope_params_to_dict + standardize_rope_params):
 *   old: "rope_theta": 500000, "rope_scaling": {"type" | "rope_type": "llama3", "factor": 8, ...}
 *   new: "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000, "factor": 8, ...}
 * rope_scaling wins over rope_parameters when both are set; a theta inside the dict wins over the
 * top-level one; llama3 takes original_max_position_embeddings from the top level if there, else from
 * the dict, else max_position_embeddings.
 */
export function readRopeParameters(config: ConfigReader, options: ReadRopeOptions): RopeParameters {
  const sourceKey = config.has("rope_scaling") ? "rope_scaling" : "rope_parameters";
  const dict = config.object(sourceKey) ?? new ConfigReader({}, config.file, sourceKey);
  if (isJsonObject(dict.raw) && Object.keys(dict.raw).some((k) => k === "full_attention" || k === "sliding_attention")) {
    throw new Error(`${config.file}: per-layer-type "${sourceKey}" (keyed by layer type) is not supported for this model`);
  }
  const ropeTheta = dict.float("rope_theta", config.float("rope_theta", options.defaultTheta ?? 10000));
  const ropeTypeName = dict.string("rope_type", dict.string("type", "default"));
  if (!(ROPE_TYPES as readonly string[]).includes(ropeTypeName)) {
    throw new Error(`${config.file}: ${sourceKey}.rope_type "${ropeTypeName}" is not supported; supported rope types: ${ROPE_TYPES.join(", ")}`);
  }
  const ropeType = ropeTypeName as RopeType;
  const params: RopeParameters = { rope_type: ropeType, rope_theta: ropeTheta };
  const partial = dict.float("partial_rotary_factor", config.float("partial_rotary_factor", null));
  if (partial !== null) params.partial_rotary_factor = partial;
  const required = (key: string): number => {
    const value = dict.float(key, null);
    if (value === null) throw new Error(`${config.file}: ${sourceKey}.${key} is required for rope_type "${ropeType}"; add it to ${sourceKey}`);
    return value;
  };
  if (ropeType !== "default") params.factor = required("factor");
  if (ropeType === "llama3") {
    params.low_freq_factor = required("low_freq_factor");
    params.high_freq_factor = required("high_freq_factor");
    params.original_max_position_embeddings =
      config.int("original_max_position_embeddings", null) ?? dict.int("original_max_position_embeddings", null) ?? options.maxPositionEmbeddings;
  }
  return params;
}

export interface RopeShape {
  headDim: number;
  maxPositionEmbeddings: number;
}

export interface RopeFrequencies {
  /** Inverse frequencies, one per rotated pair (rotaryDim / 2 of them). */
  invFreq: number[];
  /** Multiplies cos and sin (1 for every type here). */
  attentionScaling: number;
}

/** Number of leading head dims that are rotated: int(head_dim * partial_rotary_factor). */
export function rotaryDim(params: RopeParameters, headDim: number): number {
  return Math.trunc(headDim * (params.partial_rotary_factor ?? 1));
}

function defaultInvFreq(base: number, dim: number): number[] {
  // 1 / base^(2i / dim), i = 0 .. dim/2 - 1 (modeling_rope_utils: base ** (arange(0, dim, 2) / dim))
  const out: number[] = [];
  for (let i = 0; i < dim; i += 2) out.push(1 / Math.pow(base, i / dim));
  return out;
}

/**
 * The inverse frequencies of ROPE_INIT_FUNCTIONS[rope_type](config, device, seq_len). seqLen matters only
 * for "dynamic" (defaults to, and is never below, max_position_embeddings).
 */
export function ropeFrequencies(params: RopeParameters, shape: RopeShape, seqLen?: number): RopeFrequencies {
  const dim = rotaryDim(params, shape.headDim);
  const base = params.rope_theta;
  switch (params.rope_type) {
    case "default":
      return { invFreq: defaultInvFreq(base, dim), attentionScaling: 1 };
    case "linear": {
      const factor = params.factor!;
      return { invFreq: defaultInvFreq(base, dim).map((f) => f / factor), attentionScaling: 1 };
    }
    case "dynamic": {
      // NTK-aware: base * ((factor * L / max) - (factor - 1)) ^ (dim / (dim - 2)) with L = max(seq_len, max)
      const factor = params.factor!;
      const max = shape.maxPositionEmbeddings;
      const length = Math.max(seqLen ?? max, max);
      const scaledBase = base * Math.pow((factor * length) / max - (factor - 1), dim / (dim - 2));
      return { invFreq: defaultInvFreq(scaledBase, dim), attentionScaling: 1 };
    }
    case "llama3": {
      // Llama 3.1: keep high frequencies, divide low ones by factor, interpolate smoothly in between.
      const factor = params.factor!;
      const lowFreqFactor = params.low_freq_factor!;
      const highFreqFactor = params.high_freq_factor!;
      const oldContextLen = params.original_max_position_embeddings!;
      const lowFreqWavelen = oldContextLen / lowFreqFactor;
      const highFreqWavelen = oldContextLen / highFreqFactor;
      const invFreq = defaultInvFreq(base, dim).map((f) => {
        const wavelen = (2 * Math.PI) / f;
        if (wavelen < highFreqWavelen) return f;
        if (wavelen > lowFreqWavelen) return f / factor;
        const smooth = (oldContextLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        return ((1 - smooth) * f) / factor + smooth * f;
      });
      return { invFreq, attentionScaling: 1 };
    }
  }
}

/**
 * model.rotary_emb: turns position ids into the cos / sin tables of RoPE. It has no weights; its inverse
 * frequencies stay float32 whatever dtype the model is cast to (transformers keeps them float32 too, and
 * computes the tables with autocast off). For "dynamic" it keeps transformers' state across calls: the
 * frequencies grow when a longer sequence comes and go back when a short one does.
 */
export class RotaryEmbedding extends Module {
  readonly params: RopeParameters;
  readonly shape: RopeShape;
  attentionScaling: number;
  _invFreq: Tensor;
  _originalInvFreq: number[];
  _maxSeqLenCached: number;

  constructor(params: RopeParameters, shape: RopeShape) {
    super();
    this.params = params;
    this.shape = shape;
    const { invFreq, attentionScaling } = ropeFrequencies(params, shape);
    this._originalInvFreq = invFreq;
    this.attentionScaling = attentionScaling;
    this._invFreq = keep(tensor(invFreq, { dtype: "float32" }));
    this._maxSeqLenCached = shape.maxPositionEmbeddings;
  }

  /** The current inverse frequencies (float32). */
  get invFreq(): Tensor {
    return this._invFreq;
  }

  #setInvFreq(values: number[], device: string): void {
    this._invFreq.dispose();
    this._invFreq = keep(tensor(values, { dtype: "float32", device }));
  }

  /** transformers' dynamic_frequency_update: grow past the cached length, reset below the original one. */
  #dynamicUpdate(positionIds: Tensor): void {
    const seqLen = noGrad(() => {
      const max = positionIds.max();
      try {
        return max.item() + 1;
      } finally {
        max.dispose();
      }
    });
    const original = this.shape.maxPositionEmbeddings;
    const cachedBefore = this._maxSeqLenCached;
    if (seqLen > cachedBefore) {
      const { invFreq, attentionScaling } = ropeFrequencies(this.params, this.shape, seqLen);
      this.#setInvFreq(invFreq, positionIds.device);
      this.attentionScaling = attentionScaling;
      this._maxSeqLenCached = seqLen;
    }
    if (seqLen < original && cachedBefore > original) {
      this.#setInvFreq(this._originalInvFreq, positionIds.device);
      this._maxSeqLenCached = original;
    }
  }

  /**
   * cos and sin [batch, seq, rotaryDim] for position ids [batch, seq], in dtype. Computed in float32:
   * freqs = position * inv_freq, emb = cat(freqs, freqs), times attentionScaling.
   */
  forward(positionIds: Tensor, dtype: DType = "float32"): { cos: Tensor; sin: Tensor } {
    if (this.params.rope_type === "dynamic") this.#dynamicUpdate(positionIds);
    if (this._invFreq.device !== positionIds.device) {
      const moved = keep(this._invFreq.to(positionIds.device));
      this._invFreq.dispose();
      this._invFreq = moved;
    }
    return noGrad(() =>
      tidy(() => {
        const freqs = positionIds.to("float32").unsqueeze(-1).mul(this._invFreq);
        const emb = cat([freqs, freqs], -1);
        const scale = (t: Tensor) => (this.attentionScaling !== 1 ? t.mul(this.attentionScaling) : t);
        const cast = (t: Tensor) => (dtype === "float32" ? t : t.to(dtype));
        return { cos: cast(scale(emb.cos())), sin: cast(scale(emb.sin())) };
      }),
    );
  }

  protected override disposeOwned(): void {
    this._invFreq.dispose();
  }
}

/** cat(-x2, x1) over the last dim, x1 / x2 its two halves (transformers' rotate_half). */
export function rotateHalf(x: Tensor): Tensor {
  const half = x.shape[x.ndim - 1] / 2;
  const x1 = x.narrow(-1, 0, half);
  const x2 = x.narrow(-1, half, half);
  const negX2 = x2.neg();
  const out = cat([negX2, x1], -1);
  x1.dispose();
  x2.dispose();
  negX2.dispose();
  return out;
}

/**
 * Rotates queries and keys [batch, heads, seq, head_dim] by cos / sin [batch, seq, head_dim]:
 * x * cos + rotate_half(x) * sin (transformers' apply_rotary_pos_emb with unsqueeze_dim=1).
 */
export function applyRotaryPosEmb(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor): { q: Tensor; k: Tensor } {
  const c = cos.unsqueeze(1);
  const s = sin.unsqueeze(1);
  const rotate = (x: Tensor) => {
    const rotated = rotateHalf(x);
    const a = x.mul(c);
    const b = rotated.mul(s);
    const out = a.add(b);
    rotated.dispose();
    a.dispose();
    b.dispose();
    return out;
  };
  const result = { q: rotate(q), k: rotate(k) };
  c.dispose();
  s.dispose();
  return result;
}
