// The key/value cache of a decoder (transformers' DynamicCache): per layer, the keys and values
// [batch, kv_heads, seq, head_dim] of every position seen so far, so generation feeds one token per step.
import { Tensor, cat, keep } from "../../torch/index.js";

interface LayerEntry {
  key: Tensor;
  value: Tensor;
}

/**
 * Keys and values per layer. update() appends the new positions and returns the whole history; the cache
 * owns its tensors (they survive tidy scopes) and frees the previous ones on each append, so a generation
 * loop holds one copy per layer. Call dispose() when done.
 */
export class KVCache {
  #layers: (LayerEntry | undefined)[] = [];

  /** Number of positions cached (of layer 0, or of the given layer). */
  getSeqLength(layerIdx = 0): number {
    const entry = this.#layers[layerIdx];
    return entry ? entry.key.shape[2] : 0;
  }

  get numLayers(): number {
    return this.#layers.length;
  }

  /** The cached keys and values of one layer, or null when that layer has seen nothing yet. */
  layer(layerIdx: number): { key: Tensor; value: Tensor } | null {
    return this.#layers[layerIdx] ?? null;
  }

  /** Appends key / value [batch, kv_heads, new, head_dim] to layer layerIdx and returns everything cached there. */
  update(key: Tensor, value: Tensor, layerIdx: number): { key: Tensor; value: Tensor } {
    const previous = this.#layers[layerIdx];
    let entry: LayerEntry;
    if (!previous) {
      entry = { key: keep(key.alias()), value: keep(value.alias()) };
    } else {
      const [pk, nk] = [previous.key.shape, key.shape];
      if (pk[0] !== nk[0] || pk[1] !== nk[1] || pk[3] !== nk[3]) {
        throw new Error(`KVCache.update: layer ${layerIdx} holds keys [${pk}] but got [${nk}]; batch, heads and head_dim must match`);
      }
      entry = { key: keep(cat([previous.key, key], 2)), value: keep(cat([previous.value, value], 2)) };
      previous.key.dispose();
      previous.value.dispose();
    }
    this.#layers[layerIdx] = entry;
    return entry;
  }

  /** Frees every cached tensor; the cache is empty afterwards. */
  dispose(): void {
    for (const entry of this.#layers) {
      entry?.key.dispose();
      entry?.value.dispose();
    }
    this.#layers = [];
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
