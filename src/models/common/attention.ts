// Causal attention shared by the decoders: the combined causal + padding (+ sliding window) mask that
// transformers' masking_utils builds for SDPA, and the SDPA call itself.
import { Tensor, arange, noGrad, tidy, F, type DType } from "../../torch/index.js";

export interface CausalMaskOptions {
  batchSize: number;
  /** Positions in this forward pass. */
  queryLength: number;
  /** Positions already in the KV cache; keys cover pastLength + queryLength positions. */
  pastLength: number;
  /** 2-d [batch, >= pastLength + queryLength], 1 (or true) for real tokens, 0 for padding; null = no padding. */
  attentionMask?: Tensor | null;
  /** Attend only to the last slidingWindow positions (Qwen2 / Mistral sliding layers); null = all. */
  slidingWindow?: number | null;
  device: string;
  /** dtype of the attention output, for the row mask. */
  dtype: DType;
}

/**
 * What SDPA needs for one forward pass: either no mask and SDPA's causal flag (no padding, and the query
 * covers all keys or is a single token), or a boolean mask [batch, 1, query, keys] (true = attend).
 * Query rows that may attend to nothing (the padding at the start of a left-padded row) are given every
 * key to avoid NaN and then zeroed by queryHasKeys, which is what PyTorch >= 2.5 returns for such rows.
 */
export interface CausalMask {
  mask: Tensor | null;
  isCausal: boolean;
  /** [batch, 1, query, 1]: 1 where the query row attends to something, 0 where it is fully masked. */
  queryHasKeys: Tensor | null;
}

/** Builds the attention mask of a causal decoder (transformers' create_causal_mask / sdpa_mask). */
export function buildCausalMask(options: CausalMaskOptions): CausalMask {
  const { batchSize, queryLength, pastLength, device } = options;
  const keyLength = pastLength + queryLength;
  const window = options.slidingWindow ?? null;
  return noGrad(() =>
    tidy(() => {
      let padding: Tensor | null = null;
      if (options.attentionMask) {
        const given = options.attentionMask;
        if (given.ndim !== 2 || given.shape[0] !== batchSize) {
          throw new Error(`attention_mask must be [batch, length] = [${batchSize}, ${keyLength}] (past + current tokens), got [${given.shape}]`);
        }
        const width = given.shape[1];
        const real = given.dtype === "bool" ? given : given.ne(0);
        // transformers pads a short mask with zeros (the missing positions are not attended).
        padding = width >= keyLength ? real.narrow(1, 0, keyLength) : F.pad(real.to("int32"), [0, keyLength - width]).ne(0);
      }
      const windowInactive = window === null || keyLength < window;
      if ((queryLength === 1 || keyLength === queryLength) && windowInactive && (padding === null || allTrue(padding))) {
        return { mask: null, isCausal: queryLength > 1, queryHasKeys: null };
      }
      const queryPositions = arange(pastLength, keyLength, 1, { device }).view(1, 1, queryLength, 1);
      const keyPositions = arange(0, keyLength, 1, { device }).view(1, 1, 1, keyLength);
      let allowed = keyPositions.le(queryPositions);
      if (window !== null) allowed = allowed.logicalAnd(keyPositions.gt(queryPositions.sub(window)));
      if (padding !== null) allowed = allowed.logicalAnd(padding.view(batchSize, 1, 1, keyLength));
      const expanded = allowed.expand(batchSize, 1, queryLength, keyLength);
      const hasKeys = expanded.any(-1, true);
      return { mask: expanded.logicalOr(hasKeys.logicalNot()), isCausal: false, queryHasKeys: hasKeys.to(options.dtype) };
    }),
  );
}

function allTrue(mask: Tensor): boolean {
  const all = mask.all();
  try {
    return Number(all.item()) !== 0; // item() of a bool tensor is a JS boolean
  } finally {
    all.dispose();
  }
}

export function disposeCausalMask(mask: CausalMask): void {
  mask.mask?.dispose();
  mask.queryHasKeys?.dispose();
}

/**
 * softmax(q k^T * scale + mask) v for q [batch, heads, query, head_dim] and k, v [batch, kv_heads, keys,
 * head_dim] (grouped-query heads are shared), through F.scaledDotProductAttention; returns
 * [batch, query, heads * head_dim] ready for o_proj.
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, mask: CausalMask, options: { scale: number; dropoutP?: number }): Tensor {
  const attended = F.scaledDotProductAttention(q, k, v, {
    mask: mask.mask,
    isCausal: mask.isCausal,
    scale: options.scale,
    dropoutP: options.dropoutP ?? 0,
  });
  let out = attended;
  if (mask.queryHasKeys) {
    out = attended.mul(mask.queryHasKeys);
    attended.dispose();
  }
  const [batch, heads, query, headDim] = out.shape;
  const transposed = out.transpose(1, 2);
  const merged = transposed.reshape(batch, query, heads * headDim);
  out.dispose();
  transposed.dispose();
  return merged;
}
