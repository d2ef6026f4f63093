// SigLIP: configs, models, and the checkpoint key layouts they accept.
import { isPositionIdsBuffer, towerKey } from "../clip/index.js";

export * from "./config.js";
export * from "./model.js";

// transformers 5 saves SiglipVisionModel / SiglipTextModel without the vision_model. / text_model. prefix.
const VISION_TOWER_ROOTS = ["embeddings.", "encoder.", "post_layernorm.", "head."];
const TEXT_TOWER_ROOTS = ["embeddings.", "encoder.", "final_layer_norm.", "head."];

/** Checkpoint key -> SiglipVisionModel name. */
export const siglipVisionKey = (name: string) => towerKey(name, "vision_model", VISION_TOWER_ROOTS);
/** Checkpoint key -> SiglipTextModel name. */
export const siglipTextKey = (name: string) => towerKey(name, "text_model", TEXT_TOWER_ROOTS);
/** Checkpoint key -> SiglipModel name (stored position ids dropped). */
export const siglipModelKey = (name: string) => (isPositionIdsBuffer(name) ? null : name);
