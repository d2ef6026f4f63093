// Tasks over the VLM interface, each a Task the Trainer can train and a run can report on.
export type { Task, TaskReport, ReportOptions } from "./task.js";
export { SampleSource, labeledSamples, batchesOf, allSamples, type VisualSample, type ConversationSample, type SampleBatch } from "./samples.js";
export { ClassificationTask, classificationFeatureIdentity, openFeatureCache, type ClassificationTaskOptions, type FeatureStoreOptions } from "./classification.js";
export { SftTask, type SftTaskOptions } from "./generation.js";
export { ClassificationHead, poolHidden, topKPredictions, type Pooling, type ClassificationHeadOptions, type Prediction } from "./classification_head.js";
export { FeatureCache, FileHasher, canonicalJson, type FeatureCacheOptions } from "./feature_cache.js";
export { loadNamedTensors } from "./checkpoint_tensors.js";
