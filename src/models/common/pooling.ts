// Pooling a token sequence [batch, seq, dim] into one vector per row: the last non-padding token, the masked mean,
// or the first (CLS) token. Heads and the VLM interface's text features share it.
import { Tensor, tidy, arange } from "../../torch/index.js";

export type Pooling = "last" | "mean" | "cls";

/**
 * hidden [batch, seq, dim] -> [batch, dim]. "last" takes each row's last real token, so it is right for both
 * left and right padding; "mean" averages real tokens only; "cls" takes position 0. attentionMask [batch, seq]
 * (1 = real token); without it every position is real.
 */
export function poolHidden(hidden: Tensor, attentionMask: Tensor | null, pooling: Pooling): Tensor {
  if (hidden.ndim !== 3) throw new Error(`poolHidden: hidden states must be [batch, seq, dim], got [${hidden.shape}]`);
  const [batch, seq] = hidden.shape;
  if (attentionMask && (attentionMask.shape[0] !== batch || attentionMask.shape[1] !== seq)) {
    throw new Error(`poolHidden: attention mask [${attentionMask.shape}] does not match hidden states [${hidden.shape}]`);
  }
  return tidy(() => {
    if (pooling === "cls") return hidden.select(1, 0);
    if (pooling === "mean") {
      if (!attentionMask) return hidden.mean(1);
      const weights = attentionMask.to(hidden.dtype).unsqueeze(-1);
      return hidden.mul(weights).sum(1).div(weights.sum(1).clampMin(1));
    }
    if (pooling !== "last") throw new Error(`pooling must be last, mean or cls, got '${pooling}'`);
    if (!attentionMask) return hidden.select(1, seq - 1);
    // index of the last real token: the largest position whose mask is 1
    const positions = arange(0, seq, 1, { device: hidden.device }).unsqueeze(0).mul(attentionMask.to("int64"));
    const last = positions.amax(1);
    return hidden.index([arange(0, batch, 1, { device: hidden.device }), last]);
  });
}
