// Generation runs: conversation records (LLaVA or messages format; a video's frames become image placeholders) and
// an SftTask built from the run configuration; answers are scored against the label map when there is one.
import { splitRecords } from "../data/records.js";
import { readConversationRecords, referenceAnswer, type ConversationRecord } from "../data/conversations.js";
import { countMedia, type MediaCache } from "../data/media.js";
import { parseAnswerToLabel } from "../eval/answers.js";
import { generateAnswers } from "../models/vlm.js";
import { SftTask } from "../tasks/generation.js";
import { SampleSource, type ConversationSample, type SampleBatch } from "../tasks/samples.js";
import { configuredLabels, firstSamples, keepDecodable, reportSkipped } from "./records.js";
import type { RunContext, RunKind } from "./run_kind.js";

/** The messages of a conversation with a video's frames as image placeholders (one <video> or none becomes n placeholders). */
function withFramePlaceholders(record: ConversationRecord, frames: number, placeholder: string): ConversationRecord["messages"] {
  if (!record.video) return record.messages;
  const count = record.messages.reduce((n, m) => n + m.content.split(placeholder).length - 1 + m.content.split("<video>").length - 1, 0);
  if (count > 1) throw new Error(`${record.source}: a video row takes one <video> (or ${placeholder}) placeholder, found ${count}`);
  const frameTokens = placeholder.repeat(frames);
  const messages = record.messages.map((m) => ({ ...m, content: m.content.replace("<video>", frameTokens).replace(placeholder, frameTokens) }));
  if (count === 0) {
    const first = messages.find((m) => m.role === "user");
    if (first) first.content = `${frameTokens}\n${first.content}`;
  }
  return messages;
}

/** Samples of conversation records (made once each); labelIndex is the class the answer names, or -1. */
export function conversationSource(records: ConversationRecord[], media: MediaCache, labels: string[], placeholder: string): SampleSource<ConversationSample> {
  const made = new Map<number, ConversationSample>();
  return new SampleSource(records.length, (i) => {
    let sample = made.get(i);
    if (!sample) {
      const record = records[i];
      const images = record.images || record.video ? media.get({ images: record.images, video: record.video, source: record.source }) : [];
      const label = record.label ?? parseAnswerToLabel(referenceAnswer(record), labels).label;
      sample = { key: record.source, images, labelIndex: label === null ? -1 : labels.indexOf(label), messages: withFramePlaceholders(record, images.length, placeholder) };
      made.set(i, sample);
    }
    return sample;
  });
}

function readConversations(context: RunContext, path: string): ConversationRecord[] {
  const skipBad = context.config.data!.skip_bad!;
  const { records, skipped } = readConversationRecords(path, { imageToken: context.vlm.imagePlaceholder, skipBad });
  reportSkipped(skipped, context.log);
  return keepDecodable(records, context.media, skipBad, context.log);
}

type SftBatch = SampleBatch<ConversationSample>;

export const generationRun: RunKind<SftBatch, SftTask> = {
  trainingData(context) {
    const { config, vlm, media } = context;
    const data = config.data!;
    const all = readConversations(context, data.train!);
    let trainRecords = all;
    let valRecords: ConversationRecord[];
    if (data.val) valRecords = readConversations(context, data.val);
    else ({ train: trainRecords, val: valRecords } = splitRecords(all, data.val_ratio!, config.seed!));
    trainRecords = firstSamples(trainRecords, data.max_train_samples);
    valRecords = firstSamples(valRecords, data.max_eval_samples);
    const labels = configuredLabels(config) ?? [...new Set([...all, ...valRecords].map((r) => r.label).filter((l): l is string => l !== undefined))].sort();
    return {
      train: conversationSource(trainRecords, media, labels, vlm.imagePlaceholder),
      val: valRecords.length > 0 ? conversationSource(valRecords, media, labels, vlm.imagePlaceholder) : null,
      labels,
      media: countMedia([...trainRecords, ...valRecords]),
      description: `${trainRecords.length} training and ${valRecords.length} validation conversations${labels.length ? `, answers scored against ${labels.length} classes` : ""}`,
    };
  },

  evalData(context, labels, path) {
    const data = context.config.data!;
    const records = firstSamples(path ? readConversations(context, path) : splitRecords(readConversations(context, data.train!), data.val_ratio!, context.config.seed!).val, data.max_eval_samples);
    if (records.length === 0) throw new Error("no records to evaluate");
    return conversationSource(records, context.media, labels, context.vlm.imagePlaceholder);
  },

  createTask(context, labels) {
    const { config } = context;
    return new SftTask(context.vlm, {
      maxLength: config.data!.max_length,
      skipTruncated: config.generation!.skip_truncated,
      labels,
      maxNewTokens: config.generation!.max_new_tokens,
      priorityClasses: config.eval?.priority_classes,
    });
  },

  afterTraining(task) {
    return task.skipped.size > 0 ? `skipped ${task.skipped.size} sample(s) whose text would be cut inside the image tokens (generation.skip_truncated)` : null;
  },

  predict(task, context, inputs, options) {
    const question = options.prompt ?? context.config.data!.prompt!;
    task.vlm.model.eval();
    const answers = generateAnswers(task.vlm, inputs.map((input) => ({ images: input.images, question })), { maxNewTokens: task.options.maxNewTokens });
    return inputs.map((input, i) => ({ input: input.input, answer: answers[i], label: parseAnswerToLabel(answers[i], task.options.labels).label }));
  },
};
