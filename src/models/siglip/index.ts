// SigLIP: registers siglip / siglip_vision_model / siglip_text_model with loadPretrained(), and exports the
// configs, the models and the checkpoint key layouts they accept.
import { registerArchitecture } from "../auto.js";
import { isPositionIdsBuffer, towerKey, towerLoader } from "../clip/index.js";
import { registerParameterEstimate } from "../common/size_check.js";
import { parseSiglipConfig, parseSiglipTextConfig, parseSiglipVisionConfig, siglipSizeTerms, siglipTextSizeTerms, siglipVisionSizeTerms } from "./config.js";
import { SiglipModel, SiglipTextModel, SiglipVisionModel } from "./model.js";

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

registerParameterEstimate("siglip", siglipSizeTerms);
registerParameterEstimate("siglip_vision_model", siglipVisionSizeTerms);
registerParameterEstimate("siglip_text_model", siglipTextSizeTerms);
registerArchitecture("siglip", towerLoader((c) => new SiglipModel(parseSiglipConfig(c)), siglipModelKey), { architectures: ["SiglipModel"] });
registerArchitecture("siglip_vision_model", towerLoader((c) => new SiglipVisionModel(parseSiglipVisionConfig(c)), siglipVisionKey), { architectures: ["SiglipVisionModel"] });
registerArchitecture("siglip_text_model", towerLoader((c) => new SiglipTextModel(parseSiglipTextConfig(c)), siglipTextKey), { architectures: ["SiglipTextModel"] });
