// Classification runs: labeled records (JSONL or an image folder) and a ClassificationTask built from the run
// configuration, with its features kept in the on-disk cache when the backbone is frozen.
import { resolve } from "node:path";
import { countMedia } from "../data/media.js";
import { readLabeledRecords, splitRecords, type LabeledRecord } from "../data/records.js";
import { ClassificationTask, openFeatureCache } from "../tasks/classification.js";
import { labeledSamples, type SampleBatch } from "../tasks/samples.js";
import type { FeatureCache } from "../tasks/feature_cache.js";
import { configuredLabels, firstSamples, keepDecodable, reportSkipped } from "./records.js";
import { isFrozen } from "./resolve.js";
import type { RunContext, RunKind } from "./run_kind.js";

function readRecords(context: RunContext, path: string, labels: string[] | undefined): { records: LabeledRecord[]; labels: string[] } {
  const skipBad = context.config.data!.skip_bad!;
  const set = readLabeledRecords(path, { labels, skipBad });
  reportSkipped(set.skipped, context.log);
  return { records: keepDecodable(set.records, context.media, skipBad, context.log), labels: set.labels };
}

/** The on-disk feature cache of a frozen classification run, or null (not frozen, caching off, head.cache_dir null). */
function featureStore(context: RunContext): FeatureCache | null {
  const { config, vlm, folder, log } = context;
  const head = config.head ?? {};
  // resolveRunConfig gave cache_dir its default; null turns the on-disk cache off
  const dir = head.cache_dir;
  if (!isFrozen(config) || head.cache_features === false || !dir) return null;
  const settings = { question: config.data?.prompt, pooling: head.pooling, hiddenLayer: head.hidden_layer };
  return openFeatureCache(vlm, settings, { dir: resolve(dir), weightsFolder: vlm.randomInit ? folder.modelDir : vlm.folder, numFrames: config.data?.num_frames ?? 8, log });
}

export const classificationRun: RunKind<SampleBatch, ClassificationTask> = {
  trainingData(context) {
    const data = context.config.data!;
    const train = readRecords(context, data.train!, configuredLabels(context.config));
    let trainRecords = train.records;
    let valRecords: LabeledRecord[];
    if (data.val) {
      valRecords = readRecords(context, data.val, train.labels).records;
    } else {
      ({ train: trainRecords, val: valRecords } = splitRecords(train.records, data.val_ratio!, context.config.seed!));
    }
    trainRecords = firstSamples(trainRecords, data.max_train_samples);
    valRecords = firstSamples(valRecords, data.max_eval_samples);
    return {
      train: labeledSamples(trainRecords, context.media),
      val: valRecords.length > 0 ? labeledSamples(valRecords, context.media) : null,
      labels: train.labels,
      media: countMedia([...trainRecords, ...valRecords]),
      description: `${trainRecords.length} training and ${valRecords.length} validation records, ${train.labels.length} classes`,
    };
  },

  evalData(context, labels, path) {
    const data = context.config.data!;
    const records = firstSamples(
      path ? readRecords(context, path, labels).records : splitRecords(readLabeledRecords(data.train!, { labels, skipBad: data.skip_bad }).records, data.val_ratio!, context.config.seed!).val,
      data.max_eval_samples,
    );
    if (records.length === 0) throw new Error("no records to evaluate");
    return labeledSamples(records, context.media);
  },

  createTask(context, labels, options) {
    const { config } = context;
    const head = config.head!;
    return new ClassificationTask(context.vlm, {
      labels,
      question: config.data!.prompt,
      maxLength: config.data!.max_length,
      pooling: head.pooling,
      hiddenLayer: head.hidden_layer,
      headHiddenSize: head.hidden_size,
      headDropout: head.dropout,
      frozenBackbone: isFrozen(config),
      cacheFeatures: head.cache_features,
      store: options.featureCache ? featureStore(context) : null,
      normalizeFeatures: head.normalize_features,
      topK: config.eval!.top_k,
      priorityClasses: config.eval?.priority_classes,
    });
  },

  predict(task, _context, inputs, options) {
    const samples = inputs.map((input, i) => ({ key: `input:${i}:${input.input}`, images: input.images, labelIndex: 0 }));
    const predictions = task.predict(samples, options.topK);
    return inputs.map((input, i) => ({ input: input.input, predictions: predictions[i] }));
  },
};
