// Qwen2: registers "qwen2" with loadPretrained() / buildCausalLM() and exports the model.
import { registerArchitecture, registerCausalLM, causalLMLoader } from "../auto.js";
import { registerParameterEstimate } from "../common/size_check.js";
import { parseQwen2Config, qwen2SizeTerms } from "./config.js";
import { Qwen2ForCausalLM } from "./model.js";

const buildQwen2 = (config: Parameters<typeof parseQwen2Config>[0]) => new Qwen2ForCausalLM(parseQwen2Config(config));
registerCausalLM("qwen2", buildQwen2);
registerParameterEstimate("qwen2", qwen2SizeTerms);
registerArchitecture("qwen2", causalLMLoader(buildQwen2), { architectures: ["Qwen2ForCausalLM"] });

export { parseQwen2Config, type Qwen2Config, type Qwen2LayerType } from "./config.js";
export { Qwen2ForCausalLM, Qwen2Model, Qwen2DecoderLayer, Qwen2Attention } from "./model.js";
