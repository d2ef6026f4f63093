// Adapting models: LoRA layers (PEFT layout), per-component plans, PEFT adapter files.
export { LoRALinear, loraScaling, loraLayers, mergeAdapters, unmergeAdapters, replaceSubmodule, type LoRAOptions } from "./lora.js";
export {
  adaptModel, componentPrefixes, matchesTarget, trainableReport, saveAdapter, loadAdapter, COMPONENTS,
  type Component, type ComponentAdaptation, type AdaptationPlan, type AdaptResult,
} from "./adapt.js";
