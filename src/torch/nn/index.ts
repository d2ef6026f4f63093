// nn: the module system (Module, Parameter, containers), layers with PyTorch's names and defaults, and init.
export { Parameter, Module, ModuleList, Sequential, ModuleDict } from "./module.js";
export type { UnaryModule, ModuleToOptions, LoadStateDictOptions, LoadStateDictResult } from "./module.js";
export {
  Linear, Embedding, LayerNorm, RMSNorm, GroupNorm, Conv1d, Conv2d, Conv3d, Dropout, Identity,
  GELU, QuickGELU, SiLU, ReLU, Tanh, Sigmoid, activation, activationFn, ACTIVATION_NAMES,
} from "./layers.js";
export type { LayerOptions, ConvLayerOptions, GeluApproximation, ActivationModule } from "./layers.js";
export * as init from "./init.js";
export { skipRandomInit } from "./init.js";
