// nn: the module system (Module, Parameter, containers), layers with PyTorch's names and defaults, and init.
export { Parameter, Module, ModuleList, Sequential, ModuleDict } from "./module.js";
export type { UnaryModule, ModuleToOptions, LoadStateDictOptions, LoadStateDictResult } from "./module.js";
