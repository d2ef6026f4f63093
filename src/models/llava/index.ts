// LLaVA: registers "llava" with loadPretrained() and loadVlm() and exports the model, its config, the checkpoint key
// renaming and the processor.
import { registerArchitecture, registerConfigBuilder } from "../auto.js";
import { loadWeights } from "../common/hf_folder.js";
import { isPositionIdsBuffer } from "../clip/index.js";
import { registerParameterEstimate } from "../common/size_check.js";
import { llavaSizeTerms, parseLlavaConfig } from "./config.js";
import { buildLlavaForLoading, LlavaForConditionalGeneration } from "./model.js";
import { LlavaVlm } from "./vlm.js";

export * from "./config.js";
export * from "./model.js";
export * from "./processor.js";
export { LlavaVlm, loadLlavaProcessor } from "./vlm.js";
export { writeTinyLlavaFolder, tinyLlavaConfig, vocabularyOf, wordLevelTokenizerJson, type TinyLlavaOptions } from "./tiny_folder.js";

/**
 * Maps a LLaVA checkpoint key to our (transformers 5) name, or null to drop it. Accepts transformers 5's
 * layout (model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*, lm_head.*) and the
 * layout of older checkpoints and of transformers 5's save_pretrained (language_model.model.*,
 * language_model.lm_head.*, vision_tower.*, multi_modal_projector.*); vision towers saved with or without
 * their vision_model. prefix; stored position ids are dropped.
 */
export function llavaCheckpointKey(name: string): string | null {
  if (isPositionIdsBuffer(name)) return null;
  let key = name;
  if (key.startsWith("language_model.lm_head.")) key = key.slice("language_model.".length);
  else if (key.startsWith("language_model.model.")) key = `model.language_model.${key.slice("language_model.model.".length)}`;
  else if (key.startsWith("language_model.") || key.startsWith("vision_tower.") || key.startsWith("multi_modal_projector.")) key = `model.${key}`;
  const tower = "model.vision_tower.";
  if (key.startsWith(tower) && !key.startsWith(`${tower}vision_model.`)) key = `${tower}vision_model.${key.slice(tower.length)}`;
  return key;
}

registerArchitecture(
  "llava",
  ({ dir, config, options }) => {
    const model = buildLlavaForLoading(parseLlavaConfig(config));
    try {
      loadWeights(model, dir, { dtype: options.dtype, device: options.device, renameKey: llavaCheckpointKey, tiedWeights: model.tiedWeights() });
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model;
  },
  { architectures: ["LlavaForConditionalGeneration"], vlm: (context) => new LlavaVlm(context) },
);

registerParameterEstimate("llava", llavaSizeTerms);
registerConfigBuilder("llava", (config) => new LlavaForConditionalGeneration(parseLlavaConfig(config)));
