// Metrics against hand-computed values and scikit-learn's documented classification_report example.
import { test } from "node:test";
import assert from "node:assert/strict";
import { classificationReport, formatClassificationReport, confusionMatrix, confusionMatrixCsv, topKAccuracy, corpusBleu } from "../../src/eval/metrics.js";

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);

test("classification report equals scikit-learn's example, numbers and text", () => {
  const labels = ["class 0", "class 1", "class 2"];
  const report = classificationReport([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], labels);
  [0.5, 0, 1].forEach((v, i) => close(report.classes[i].precision, v, `precision ${i}`));
  [1, 0, 2 / 3].forEach((v, i) => close(report.classes[i].recall, v, `recall ${i}`));
  [2 / 3, 0, 0.8].forEach((v, i) => close(report.classes[i].f1, v, `f1 ${i}`));
  close(report.accuracy, 0.6, "accuracy");
  close(report.macro.recall, (1 + 0 + 2 / 3) / 3, "macro recall");
  close(report.macro.f1, (2 / 3 + 0.8) / 3, "macro f1");
  close(report.weighted.precision, 0.7, "weighted precision");
  close(report.weighted.f1, (2 / 3 + 3 * 0.8) / 5, "weighted f1");
  const expected = [
    "              precision    recall  f1-score   support",
    "",
    "     class 0       0.50      1.00      0.67         1",
    "     class 1       0.00      0.00      0.00         1",
    "     class 2       1.00      0.67      0.80         3",
    "",
    "    accuracy                           0.60         5",
    "   macro avg       0.50      0.56      0.49         5",
    "weighted avg       0.70      0.60      0.61         5",
    "",
  ].join("\n");
  assert.equal(formatClassificationReport(report), expected);
});

test("priority classes, unparseable predictions and zero division", () => {
  const labels = ["cat", "dog", "bird"];
  const report = classificationReport([0, 0, 1, 2, 2], [0, -1, 1, 1, -1], labels, { priorityClasses: ["cat", "bird"] });
  assert.equal(report.unparseable, 2);
  close(report.accuracy, 0.4, "accuracy counts unparseable as wrong");
  assert.deepEqual(report.priority, { classes: ["cat", "bird"], accuracy: 0.25, support: 4, recall: { cat: 0.5, bird: 0 } });
  close(report.classes[2].precision, 0, "no predictions of bird: precision 0 (zero_division=0)");
  assert.match(formatClassificationReport(report), /priority classes \(cat, bird\): accuracy 0\.25 over 4 samples\nunparseable predictions: 2/);
  assert.throws(() => classificationReport([0], [0], labels, { priorityClasses: ["zebra"] }), /priority class 'zebra' is not one of the labels/);
  assert.throws(() => classificationReport([0, 3], [0, 1], labels), /yTrue\[1\] = 3 is not a class index/);
});

test("confusion matrix rows are true classes; CSV quotes labels that need it", () => {
  const m = confusionMatrix([0, 1, 2, 2, 2], [0, 0, 2, 2, 1], 3);
  assert.deepEqual(m, [[1, 0, 0], [1, 0, 0], [0, 1, 2]]);
  assert.equal(confusionMatrixCsv([[1, 0], [2, 3]], ["a", "b,c"]), 'true \\ predicted,a,"b,c"\na,1,0\n"b,c",2,3\n');
});

test("top-k accuracy", () => {
  const scores = [[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]];
  const y = [1, 1, 0, 2];
  close(topKAccuracy(scores, y, 1), 1 / 4, "top-1");
  close(topKAccuracy(scores, y, 2), 2 / 4, "top-2");
  close(topKAccuracy(scores, y, 3), 1, "top-3");
});

test("corpus BLEU-4: identity is 1, no 4-gram match is 0, and a hand-computed case", () => {
  close(corpusBleu(["the cat sat on the mat"], [["the cat sat on the mat"]]), 1, "identity");
  assert.equal(corpusBleu(["the cat sat down"], [["a dog ran off"]]), 0);
  // hyp 6 tokens vs ref 7: p1 = 5/6, p2 = 3/5, p3 = 2/4, p4 = 0/3 (0 without smoothing), so 3-gram BLEU
  const bleu3 = corpusBleu(["the cat sat on a mat"], [["the cat sat on the red mat"]], 3);
  const expected = Math.exp(1 - 7 / 6) * Math.exp((Math.log(5 / 6) + Math.log(3 / 5) + Math.log(2 / 4)) / 3);
  close(bleu3, expected, "3-gram BLEU with brevity penalty");
});
