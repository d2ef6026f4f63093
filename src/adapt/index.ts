// Adapting models: LoRA layers in PEFT's layout, per-component plans (frozen / LoRA / full), PEFT adapter files.
//
//   const model = await loadPretrained("llava-1.5-7b-hf");
//   const { trainable } = adaptModel(model, {
//     vision: { mode: "frozen" },
//     projector: { mode: "full" },
//     language: { mode: "lora", r: 16, alpha: 32, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"] },
//   }, console.log);                       // matched layers + "trainable params: ... || all params: ... || trainable%: ..."
//   ... train ...
//   saveAdapter(model, "runs/x/adapter", "llava-1.5-7b-hf");   // PeftModel.from_pretrained(base, "runs/x/adapter") reads it
//   await loadAdapter(freshModel, "runs/x/adapter");           // also reads adapters saved by PEFT
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
