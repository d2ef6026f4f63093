// vlmkit: adapt vision-language models to real tasks from TypeScript.
export * from "./torch/index.js";
export * from "./data/image.js";
export { ImageProcessor, parseImageProcessorConfig } from "./data/image_processor.js";
export { resizeImage, centerCrop } from "./data/resample.js";
export * from "./models/index.js";
export { Tokenizer } from "./data/tokenizer.js";
export { renderChatTemplate } from "./data/chat_template.js";
export * from "./adapt/index.js";
export * from "./eval/metrics.js";
export { confusionMatrixPng, renderConfusionMatrix, confusionLayout, type ConfusionLayout } from "./eval/confusion_png.js";
export * from "./data/records.js";
export * from "./heads/classification.js";
export * as train from "./train/index.js";
export { Trainer, TensorBoardWriter, readEventFile, readMetrics, buildParamGroups, trainableParameters } from "./train/index.js";
export type { Batch, DataSource, TrainTask, TrainOptions, TrainResult, StepInfo, LossOutput, ParamGroupRule } from "./train/index.js";
export * from "./eval/answers.js";
