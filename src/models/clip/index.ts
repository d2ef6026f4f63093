// CLIP: configs, models, and the checkpoint key layouts they accept.
export * from "./config.js";
export * from "./model.js";

// transformers 5 keeps the towers' modules at the top of CLIPVisionModel / CLIPTextModel and saves them
// without the `vision_model.` / `text_model.` prefix that hub checkpoints (and our module tree) have.
const VISION_TOWER_ROOTS = ["embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm."];
const TEXT_TOWER_ROOTS = ["embeddings.", "encoder.", "final_layer_norm."];

/** Old checkpoints store the position_ids buffers, which are recomputed here. */
export const isPositionIdsBuffer = (name: string) => /(^|\.)embeddings\.position_ids$/.test(name);

/**
 * Maps a checkpoint key of a single-tower checkpoint (CLIPVisionModel or CLIPTextModel, hub or transformers-5
 * layout) to our name under `prefix` ("vision_model" or "text_model"); null drops it.
 */
export function towerKey(name: string, prefix: "vision_model" | "text_model"): string | null {
  if (isPositionIdsBuffer(name)) return null;
  if (name.startsWith(`${prefix}.`)) return name;
  const roots = prefix === "vision_model" ? VISION_TOWER_ROOTS : TEXT_TOWER_ROOTS;
  return roots.some((root) => name.startsWith(root)) ? `${prefix}.${name}` : name;
}

/** Checkpoint key -> CLIPVisionModel name. */
export const clipVisionKey = (name: string) => towerKey(name, "vision_model");
/** Checkpoint key -> CLIPTextModel name. */
export const clipTextKey = (name: string) => towerKey(name, "text_model");
/** Checkpoint key -> CLIPModel name (both layouts already agree; only stored position ids are dropped). */
export const clipModelKey = (name: string) => (isPositionIdsBuffer(name) ? null : name);
