// Llama: registers "llama" with loadPretrained() / buildCausalLM() and exports the model.
import { registerArchitecture, registerCausalLM, causalLMLoader } from "../auto.js";
import { registerParameterEstimate } from "../common/size_check.js";
import { llamaSizeTerms, parseLlamaConfig } from "./config.js";
import { LlamaForCausalLM } from "./model.js";

const buildLlama = (config: Parameters<typeof parseLlamaConfig>[0]) => new LlamaForCausalLM(parseLlamaConfig(config));
registerCausalLM("llama", buildLlama);
registerParameterEstimate("llama", llamaSizeTerms);
registerArchitecture("llama", causalLMLoader(buildLlama), { architectures: ["LlamaForCausalLM"] });

export { parseLlamaConfig, type LlamaConfig } from "./config.js";
export { LlamaForCausalLM, LlamaModel, LlamaDecoderLayer, LlamaAttention, LlamaMLP } from "./model.js";
