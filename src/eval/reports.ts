// Evaluation reports on disk: report.json, report.txt, the confusion matrix (confusion.csv and the heatmap
// confusion.png), and one line per sample (predictions.jsonl for a head, answers.jsonl for generated answers).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { classificationReport, confusionMatrix, confusionMatrixCsv, formatClassificationReport, topKAccuracy, type ClassificationReport } from "./metrics.js";
import { confusionMatrixPng } from "./confusion_png.js";
import { parseAnswerToLabel, type AnswerMatch } from "./answers.js";

export interface ClassPrediction {
  label: string;
  probability: number;
}

export function argmax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** The k most probable classes, probabilities rounded to 6 digits. */
export function topPredictions(probabilities: number[], labels: string[], k: number): ClassPrediction[] {
  return probabilities
    .map((probability, index) => ({ label: labels[index], probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k)
    .map((p) => ({ label: p.label, probability: Number(p.probability.toFixed(6)) }));
}

/** accuracy, loss and top-k accuracy (k > 1) of scored samples. */
export function scoreMetrics(probabilities: number[][], yTrue: number[], loss: number, topK: number): Record<string, number> {
  const k = Math.min(topK, probabilities[0]?.length ?? 1);
  const top1 = probabilities.filter((p, i) => argmax(p) === yTrue[i]).length / Math.max(1, yTrue.length);
  const metrics: Record<string, number> = { accuracy: top1, loss };
  if (k > 1) metrics[`top${k}`] = topKAccuracy(probabilities, yTrue, k);
  return metrics;
}

/** confusion.csv and the same matrix as a heatmap, confusion.png. */
export function writeConfusion(outDir: string, matrix: number[][], labels: string[]): void {
  writeFileSync(join(outDir, "confusion.csv"), confusionMatrixCsv(matrix, labels));
  writeFileSync(join(outDir, "confusion.png"), confusionMatrixPng(matrix, labels));
}

export interface ClassificationEvaluation {
  split: string;
  report: ClassificationReport;
  text: string;
  metrics: Record<string, number>;
}

export interface ScoredSamples {
  /** "file:line" of each sample. */
  sources: string[];
  /** Softmax probabilities per sample. */
  probabilities: number[][];
  yTrue: number[];
  loss: number;
}

/** The report of a classifier's scores; with outDir, writes report.json, report.txt, confusion.csv/.png, predictions.jsonl. */
export function classifierReport(
  scores: ScoredSamples, labels: string[], options: { split: string; outDir?: string; topK?: number; priorityClasses?: string[] },
): ClassificationEvaluation {
  const metrics = scoreMetrics(scores.probabilities, scores.yTrue, scores.loss, options.topK ?? 5);
  const yPred = scores.probabilities.map(argmax);
  const report = classificationReport(scores.yTrue, yPred, labels, { priorityClasses: options.priorityClasses });
  const text = formatClassificationReport(report);
  if (options.outDir) {
    const outDir = options.outDir;
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, "report.json"), JSON.stringify({ split: options.split, metrics, report }, null, 2) + "\n");
    writeFileSync(join(outDir, "report.txt"), text);
    writeConfusion(outDir, confusionMatrix(scores.yTrue, yPred, labels.length), labels);
    const k = Math.min(options.topK ?? 5, labels.length);
    const lines = scores.sources.map((source, i) =>
      JSON.stringify({ source, label: labels[scores.yTrue[i]], predictions: topPredictions(scores.probabilities[i], labels, k) }),
    );
    writeFileSync(join(outDir, "predictions.jsonl"), lines.join("\n") + "\n");
  }
  return { split: options.split, report, text, metrics };
}

export interface AnsweredSample {
  source: string;
  /** The class index the sample belongs to, or -1 when it has none (it is left out of the scores). */
  labelIndex: number;
  reference: string;
  answer: string;
}

/**
 * The report of generated answers parsed to classes; with outDir, writes report.json, report.txt,
 * confusion.csv/.png and answers.jsonl (reference, answer, parsed class and how it was parsed).
 */
export function answerReport(
  samples: AnsweredSample[], labels: string[], options: { split: string; outDir?: string; priorityClasses?: string[] },
): ClassificationEvaluation {
  const parsed = samples.map((s) => parseAnswerToLabel(s.answer, labels));
  const kept = samples.map((s, i) => [s.labelIndex, i] as const).filter(([y]) => y >= 0).map(([, i]) => i);
  const yTrue = kept.map((i) => samples[i].labelIndex);
  const yPred = kept.map((i) => parsed[i].index);
  const report = classificationReport(yTrue, yPred, labels, { priorityClasses: options.priorityClasses });
  const how: Record<AnswerMatch, number> = { exact: 0, normalised: 0, closest: 0, unparseable: 0 };
  for (const p of parsed) how[p.how]++;
  const metrics = { accuracy: report.accuracy, unparseable: how.unparseable / Math.max(1, parsed.length) };
  const text = formatClassificationReport(report) + `answers parsed: ${how.exact} exact, ${how.normalised} normalised, ${how.closest} closest, ${how.unparseable} unparseable\n`;
  if (options.outDir) {
    const outDir = options.outDir;
    mkdirSync(outDir, { recursive: true });
    writeFileSync(join(outDir, "report.json"), JSON.stringify({ split: options.split, metrics, parsed: how, report }, null, 2) + "\n");
    writeFileSync(join(outDir, "report.txt"), text);
    writeConfusion(outDir, confusionMatrix(yTrue, yPred, labels.length), labels);
    const lines = samples.map((s, i) => JSON.stringify({ source: s.source, reference: s.reference, answer: s.answer, parsed: parsed[i].label, how: parsed[i].how }));
    writeFileSync(join(outDir, "answers.jsonl"), lines.join("\n") + "\n");
  }
  return { split: options.split, report, text, metrics };
}
