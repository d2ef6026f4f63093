// Module paths as PEFT sees them. PEFT names adapter weights after transformers' in-memory module paths,
// which equal ours except where a model keeps an extra level: transformers 5's LLaVA holds its vision
// tower without the `vision_model.` level (model.vision_tower.encoder...), while ours keeps the tower a
// full CLIP/SigLIP vision model (model.vision_tower.vision_model.encoder...). Adapters written by older
// PEFT / transformers 4 use LLaVA's old layout (language_model.model.layers..., vision_tower.vision_model...),
// which is read too.
import type { Module } from "../torch/nn/index.js";
import { LlavaForConditionalGeneration, llavaCheckpointKey } from "../models/llava/index.js";

export interface PeftNaming {
  /** Our module or parameter path -> the path PEFT uses (transformers 5 in-memory). */
  toPeft(path: string): string;
  /** A path from a PEFT file or config (transformers 5 or older layouts) -> ours. */
  fromPeft(path: string): string;
}

const IDENTITY: PeftNaming = { toPeft: (p) => p, fromPeft: (p) => p };

/** How this model's paths are spelled in PEFT files. */
export function peftNaming(model: Module): PeftNaming {
  const tower = ["model.vision_tower", "vision_tower"].find((p) => model.hasSubmodule(`${p}.vision_model`));
  if (tower === undefined) return IDENTITY;
  const ours = `${tower}.vision_model`;
  const toPeft = (path: string) => (path === ours || path.startsWith(ours + ".") ? tower + path.slice(ours.length) : path);
  const insertLevel = (path: string) => (path === tower || (path.startsWith(tower + ".") && !path.startsWith(ours + ".") && path !== ours) ? ours + path.slice(tower.length) : path);
  if (model instanceof LlavaForConditionalGeneration) {
    // llavaCheckpointKey renames the old layouts and inserts vision_model; it works on parameter names, so a
    // module path goes through with a placeholder leaf.
    return {
      toPeft,
      fromPeft: (path) => {
        const renamed = llavaCheckpointKey(`${path}.__leaf__`);
        return renamed === null ? path : renamed.slice(0, -".__leaf__".length);
      },
    };
  }
  return { toPeft, fromPeft: insertLevel };
}
