// CLIP: registers clip / clip_vision_model / clip_text_model with loadPretrained(), and exports the
// configs, the models and the checkpoint key layouts they accept.
import { registerArchitecture, type ArchitectureLoader } from "../auto.js";
import { loadWeights } from "../common/hf_folder.js";
import type { ConfigReader } from "../common/config_reader.js";
import { skipRandomInit, type Module } from "../../torch/nn/index.js";
import { registerParameterEstimate } from "../common/size_check.js";
import { clipSizeTerms, clipTextSizeTerms, clipVisionSizeTerms, parseCLIPConfig, parseCLIPTextConfig, parseCLIPVisionConfig } from "./config.js";
import { CLIPModel, CLIPTextModel, CLIPVisionModel } from "./model.js";

export * from "./config.js";
export * from "./model.js";

// transformers 5 keeps the towers' modules at the top of CLIPVisionModel / CLIPTextModel and saves them
// without the `vision_model.` / `text_model.` prefix that hub checkpoints (and our module tree) have.
const VISION_TOWER_ROOTS = ["embeddings.", "pre_layrnorm.", "encoder.", "post_layernorm."];
const TEXT_TOWER_ROOTS = ["embeddings.", "encoder.", "final_layer_norm."];

/** Old checkpoints store the position_ids buffers, which are recomputed here. */
export const isPositionIdsBuffer = (name: string) => /(^|\.)embeddings\.position_ids$/.test(name);

/**
 * Maps a checkpoint key of a single-tower checkpoint (hub or transformers-5 layout) to our name under
 * `prefix` ("vision_model" or "text_model"): keys starting with one of the tower's top-level module names
 * get the prefix; stored position ids are dropped (null).
 */
export function towerKey(name: string, prefix: "vision_model" | "text_model", roots: readonly string[]): string | null {
  if (isPositionIdsBuffer(name)) return null;
  if (name.startsWith(`${prefix}.`)) return name;
  return roots.some((root) => name.startsWith(root)) ? `${prefix}.${name}` : name;
}

/** Checkpoint key -> CLIPVisionModel name. */
export const clipVisionKey = (name: string) => towerKey(name, "vision_model", VISION_TOWER_ROOTS);
/** Checkpoint key -> CLIPTextModel name. */
export const clipTextKey = (name: string) => towerKey(name, "text_model", TEXT_TOWER_ROOTS);
/** Checkpoint key -> CLIPModel name (both layouts already agree; only stored position ids are dropped). */
export const clipModelKey = (name: string) => (isPositionIdsBuffer(name) ? null : name);

/** A loader that builds a model with placeholder weights, then loads the folder's safetensors through renameKey. */
export function towerLoader(build: (config: ConfigReader) => Module, renameKey: (name: string) => string | null): ArchitectureLoader {
  return ({ dir, config, options }) => {
    const model = skipRandomInit(() => build(config));
    try {
      loadWeights(model, dir, { dtype: options.dtype, device: options.device, renameKey });
    } catch (error) {
      model.dispose();
      throw error;
    }
    return model;
  };
}

registerParameterEstimate("clip", clipSizeTerms);
registerParameterEstimate("clip_vision_model", clipVisionSizeTerms);
registerParameterEstimate("clip_text_model", clipTextSizeTerms);
registerArchitecture("clip", towerLoader((c) => new CLIPModel(parseCLIPConfig(c)), clipModelKey), { architectures: ["CLIPModel"] });
registerArchitecture("clip_vision_model", towerLoader((c) => new CLIPVisionModel(parseCLIPVisionConfig(c)), clipVisionKey), { architectures: ["CLIPVisionModel"] });
registerArchitecture("clip_text_model", towerLoader((c) => new CLIPTextModel(parseCLIPTextConfig(c)), clipTextKey), { architectures: ["CLIPTextModel"] });
