// Training: the Trainer and its contract with tasks (TrainTask, DataSource), checkpoints, logs and TensorBoard files.
export { Trainer, defaultBestMode, RUN_FILES, CHECKPOINT_FILES } from "./trainer.js";
export type { Batch, LossOutput, TrainTask, DataSource, TrainOptions, TrainResult, StepInfo, EvalRecord, TrainerStateFile } from "./trainer.js";
export { trainableParameters, buildParamGroups, describeParamGroups } from "./param_groups.js";
export type { ParamGroupRule, TrainableParameter, ResolvedParamGroup, ParamGroupOptions } from "./param_groups.js";
export { epochOrder, planEpoch, stepsPerEpoch, seededRandom } from "./data_order.js";
export type { EpochPlan } from "./data_order.js";
export { writeFolderAtomically, recoverCheckpointFolder } from "./checkpoint.js";
export { MetricsLog, readMetrics } from "./metrics_log.js";
export type { MetricsRecord } from "./metrics_log.js";
export { TensorBoardWriter, readEventFile, readRecords, decodeEvent, crc32c, maskedCrc32c, frameRecord } from "./tensorboard.js";
export type { DecodedEvent } from "./tensorboard.js";
export { GradScaler } from "./grad_scaler.js";
export { ConsoleProgress, ItemProgress, formatDuration } from "./progress.js";
