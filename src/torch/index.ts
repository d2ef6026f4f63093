// The tensor library: import * as torch from "vlmkit/torch" or the named exports from "vlmkit".
export { Tensor, tidy, keep, dispose, liveTensorCount, toDType, isFloatingDType } from "./tensor.js";
export type { DType, DTypeLike, DeviceLike, Scalar, NestedArray, ToOptions } from "./tensor.js";
export * from "./creation.js";
export * as F from "./functional.js";
export { cat, stack, where, einsum } from "./functional.js";
export { noGrad, enableGrad, isGradEnabled, autocast, isAutocastEnabled, manualSeed, getRngState, setRngState } from "./autograd.js";
export * as autograd from "./autograd.js";
export { cuda, buildInfo, setNumThreads, getNumThreads } from "./cuda.js";
export * as nn from "./nn/index.js";
export {
  Parameter, Module, ModuleList, Sequential, ModuleDict, Linear, Embedding, LayerNorm, RMSNorm, GroupNorm, Conv1d, Conv2d, Conv3d,
  Dropout, Identity, GELU, QuickGELU, SiLU, ReLU, Tanh, Sigmoid, activation, activationFn,
} from "./nn/index.js";
export * as optim from "./optim/index.js";
export { Optimizer, AdamW, SGD, clipGradNorm, Scheduler, constantSchedule, linearSchedule, cosineSchedule, scheduleByName } from "./optim/index.js";
export type { ParamGroup, OptimizerStateDict, LRSchedule, SchedulerStateDict } from "./optim/index.js";
export { gradcheck } from "./gradcheck.js";
export { seededRandom, shuffledIndices } from "./seeded_random.js";
export type { GradcheckOptions, GradcheckResult, GradcheckElement } from "./gradcheck.js";
export { readSafetensors, writeSafetensors, writeShardedSafetensors, SafetensorsFile, SafetensorsCheckpoint } from "./safetensors.js";
export type { SafetensorsTensorInfo, SafetensorsLoadOptions, ShardedWriteOptions, ShardedWriteResult } from "./safetensors.js";
