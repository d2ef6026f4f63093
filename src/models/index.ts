// The model zoo: importing this module registers every architecture with loadPretrained().
// Each architecture folder registers itself in its index.ts; add one import line per folder.
import "./llama/index.js";
import "./qwen2/index.js";
import "./clip/index.js";
import "./siglip/index.js";
import "./llava/index.js";

export {
  loadPretrained, registerArchitecture, buildFromConfig, registerConfigBuilder, type ConfigBuilder, supportedModelTypes, supportedVlmTypes, registerCausalLM, buildCausalLM, causalLMLoader,
  type LoadPretrainedOptions, type PretrainedContext, type ArchitectureLoader, type PretrainedModel, type CausalLM, type CausalLMBuilder,
} from "./auto.js";
export {
  loadVlm, saveModelFolder, generateAnswers, componentPrefixesOf, pickHiddenState, DEFAULT_QUESTION, PROCESSOR_FILES,
  type VisionLanguageModel, type VlmSource, type LoadVlmOptions, type VlmContext, type VlmFactory, type VlmPrompt, type VlmInputs,
  type VlmForwardOutput, type VlmComponent, type VlmComponentName, type ImageEncoding, type TextEncoding, type VlmGenerateOptions, type ImageSize, type ChatMessage,
} from "./vlm.js";
export { poolHidden, type Pooling } from "./common/pooling.js";
export { generate, topKFilter, topPFilter, type GenerateOptions, type GenerativeModel, type DecodingTokenizer } from "./generation.js";
export { KVCache } from "./common/kv_cache.js";
export { causalLMLoss, type CausalLMInputs, type CausalLMOutput, type DecoderOutput, type CausalLMLossOptions } from "./common/outputs.js";
export { RotaryEmbedding, readRopeParameters, ropeFrequencies, applyRotaryPosEmb, rotateHalf, ROPE_TYPES, type RopeParameters, type RopeType } from "./common/rotary.js";
export { buildCausalMask, causalAttention, type CausalMask } from "./common/attention.js";
export { ConfigReader } from "./common/config_reader.js";
export {
  loadWeights, readModelConfig, readGenerationConfig, parseGenerationConfig, readJsonObject,
  type GenerationConfig, type LoadWeightsOptions, type LoadWeightsResult, type LoadDType,
} from "./common/hf_folder.js";
export * from "./llama/index.js";
export * from "./qwen2/index.js";
export * from "./clip/index.js";
export * from "./siglip/index.js";
export * from "./llava/index.js";
