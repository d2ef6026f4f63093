// Adapting models: LoRA layers in PEFT's layout, per-component plans (frozen / LoRA / full), PEFT adapter files.
export {
  LoRALinear, loraScaling, loraLayers, mergeAdapters, unmergeAdapters, removeAdapters, replaceSubmodule, type LoRAOptions,
} from "./lora.js";
export {
  adaptModel, componentPrefixes, componentOf, matchesTarget, trainableReport, COMPONENTS, ALL_LINEAR,
  type Component, type ComponentAdaptation, type ComponentPrefixes, type AdaptationPlan, type AdaptResult,
} from "./adapt.js";
export {
  saveAdapter, loadAdapter, adapterStateDict, loadAdapterStateDict, adapterConfig, readAdapterConfig, parseAdapterConfig,
  peftSelects, ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, PEFT_KEY_PREFIX,
  type PeftLoraConfig, type LoadedAdapter, type LoadAdapterStateOptions,
} from "./peft.js";
export { peftNaming, type PeftNaming } from "./naming.js";
