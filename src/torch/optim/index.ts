// Optimizers, gradient clipping and learning-rate schedules: import { optim } from "vlmkit".
export { Optimizer } from "./optimizer.js";
export type {
  BaseHyperparameters, ParamGroup, ResolvedParamGroup, SavedParamGroup, OptimizerStateDict, ParamState, StateLayout,
} from "./optimizer.js";
export { AdamW } from "./adamw.js";
export type { AdamWHyperparameters, AdamWOptions, AdamWParamGroup } from "./adamw.js";
export { SGD } from "./sgd.js";
export type { SGDHyperparameters, SGDOptions, SGDParamGroup } from "./sgd.js";
export { clipGradNorm } from "./clip.js";
export { Scheduler, constantSchedule, linearSchedule, cosineSchedule, scheduleByName } from "./schedules.js";
export type { LRSchedule, WarmupOptions, DecayOptions, CosineOptions, ScheduleName, SchedulerStateDict, HasParamGroups } from "./schedules.js";
