// Qwen2: registers "qwen2" with loadPretrained() / buildCausalLM() and exports the model.
import { registerArchitecture, registerCausalLM, causalLMLoader } from "../auto.js";
import { parseQwen2Config } from "./config.js";
import { Qwen2ForCausalLM } from "./model.js";

const buildQwen2 = (config: Parameters<typeof parseQwen2Config>[0]) => new Qwen2ForCausalLM(parseQwen2Config(config));
registerCausalLM("qwen2", buildQwen2);
registerArchitecture("qwen2", causalLMLoader(buildQwen2), { architectures: ["Qwen2ForCausalLM"] });

export { parseQwen2Config, type Qwen2Config, type Qwen2LayerType } from "./config.js";
export { Qwen2ForCausalLM, Qwen2Model, Qwen2DecoderLayer, Qwen2Attention } from "./model.js";
