// Runs: the run file's schema, the run folder, and the workflows the CLI and a server share (train, eval,
// predict, generate, the demo).
export {
  RUN_SCHEMA, FLAG_ALIASES, ConfigError, validateRunConfig, readRunConfig, configFromFlags, mergeConfigs, runConfigToYaml, describeSchema,
  splitArgs, normaliseFlagName, booleanFlagNames, suggestKey, type RunConfig, type AdaptationConfig,
} from "./config.js";
export { RUN_DEFAULTS, resolveRunConfig, absolutePaths, adaptationPlan, trainOptions, modelSource, type Log } from "./resolve.js";
export { RunFolder, RUN_FILE, LABELS_FILE, LOCK_FILE } from "./run_folder.js";
export { trainRun, runKind, adaptRunModel, RUN_KINDS, type TrainSummary, type TrainRunOptions } from "./train.js";
export { loadRun, evalRun, predictRun, generateText, exportRun, type LoadedRun, type EvalOptions, type GenerateSource, type ExportOptions, type ExportResult } from "./use.js";
export type { RunKind, RunContext, RunData, PredictInput, PredictionOutput } from "./run_kind.js";
export { runDemo, type DemoOptions, type DemoResult, type DemoStage } from "./demo.js";
