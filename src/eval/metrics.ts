// Classification and generation metrics: top-k accuracy, scikit-learn's classification_report (per-class
// precision / recall / F1 / support with macro and weighted averages, zero_division=0), confusion matrices,
// accuracy on priority classes, and corpus BLEU-4.

export interface ClassScores {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ClassificationReport {
  classes: ClassScores[];
  accuracy: number;
  macro: Omit<ClassScores, "label">;
  weighted: Omit<ClassScores, "label">;
  total: number;
  /** Accuracy over the samples whose true class is a priority class, and each one's recall. */
  priority?: { classes: string[]; accuracy: number; support: number; recall: Record<string, number> };
  /** Predictions that could not be mapped to a class (e.g. unparseable generated answers), counted as wrong. */
  unparseable?: number;
}

function checkLabels(yTrue: number[], yPred: number[], numClasses: number): void {
  if (yTrue.length !== yPred.length) throw new Error(`yTrue has ${yTrue.length} entries but yPred has ${yPred.length}`);
  for (const [name, ys] of [["yTrue", yTrue], ["yPred", yPred]] as const) {
    ys.forEach((y, i) => {
      // -1 in yPred marks an unparseable prediction
      if (!Number.isInteger(y) || y >= numClasses || y < (name === "yPred" ? -1 : 0)) throw new Error(`${name}[${i}] = ${y} is not a class index in [0, ${numClasses})`);
    });
  }
}

/** Rows are true classes, columns predicted classes; unparseable predictions (-1) are left out of it. */
export function confusionMatrix(yTrue: number[], yPred: number[], numClasses: number): number[][] {
  checkLabels(yTrue, yPred, numClasses);
  const matrix = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  yTrue.forEach((t, i) => {
    if (yPred[i] >= 0) matrix[t][yPred[i]]++;
  });
  return matrix;
}

export function confusionMatrixCsv(matrix: number[][], labels: string[]): string {
  const cell = (text: string) => (/[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  const header = ["true \\ predicted", ...labels].map(cell).join(",");
  return [header, ...matrix.map((row, i) => [cell(labels[i]), ...row.map(String)].join(","))].join("\n") + "\n";
}

/** Fraction of rows whose true class is among the k highest scores (ties broken by lower index). */
export function topKAccuracy(scores: number[][], yTrue: number[], k: number): number {
  if (scores.length !== yTrue.length) throw new Error(`scores has ${scores.length} rows but yTrue has ${yTrue.length}`);
  if (scores.length === 0) return 0;
  let hits = 0;
  scores.forEach((row, i) => {
    const target = row[yTrue[i]];
    const better = row.filter((s, j) => s > target || (s === target && j < yTrue[i])).length;
    if (better < k) hits++;
  });
  return hits / scores.length;
}

const safeDivide = (a: number, b: number) => (b === 0 ? 0 : a / b);

export function classificationReport(
  yTrue: number[],
  yPred: number[],
  labels: string[],
  options: { priorityClasses?: string[] } = {},
): ClassificationReport {
  const n = labels.length;
  const matrix = confusionMatrix(yTrue, yPred, n);
  const classes: ClassScores[] = labels.map((label, c) => {
    const tp = matrix[c][c];
    const predicted = matrix.reduce((s, row) => s + row[c], 0);
    const support = yTrue.filter((y) => y === c).length;
    const precision = safeDivide(tp, predicted);
    const recall = safeDivide(tp, support);
    return { label, precision, recall, f1: safeDivide(2 * precision * recall, precision + recall), support };
  });
  const total = yTrue.length;
  const average = (weights: number[]) => {
    const sum = weights.reduce((a, b) => a + b, 0);
    const mean = (key: "precision" | "recall" | "f1") => safeDivide(classes.reduce((s, c, i) => s + c[key] * weights[i], 0), sum);
    return { precision: mean("precision"), recall: mean("recall"), f1: mean("f1"), support: total };
  };
  const report: ClassificationReport = {
    classes,
    accuracy: safeDivide(yTrue.filter((y, i) => y === yPred[i]).length, total),
    macro: average(classes.map(() => 1)),
    weighted: average(classes.map((c) => c.support)),
    total,
  };
  const unparseable = yPred.filter((y) => y === -1).length;
  if (unparseable > 0) report.unparseable = unparseable;
  if (options.priorityClasses && options.priorityClasses.length > 0) {
    const ids = options.priorityClasses.map((name) => {
      const id = labels.indexOf(name);
      if (id < 0) throw new Error(`priority class '${name}' is not one of the labels (${labels.join(", ")})`);
      return id;
    });
    const rows = yTrue.map((y, i) => [y, yPred[i]]).filter(([y]) => ids.includes(y));
    report.priority = {
      classes: options.priorityClasses,
      accuracy: safeDivide(rows.filter(([y, p]) => y === p).length, rows.length),
      support: rows.length,
      recall: Object.fromEntries(ids.map((id) => [labels[id], classes[id].recall])),
    };
  }
  return report;
}

/** The report as scikit-learn prints it (two decimals), plus priority and unparseable lines when present. */
export function formatClassificationReport(report: ClassificationReport, digits = 2): string {
  const width = Math.max(12, ...report.classes.map((c) => c.label.length));
  const num = (v: number) => v.toFixed(digits).padStart(10);
  const lines = [" ".repeat(width + 1) + ["precision", "recall", "f1-score", "support"].map((h) => h.padStart(10)).join(""), ""];
  for (const c of report.classes) lines.push(c.label.padStart(width) + " " + num(c.precision) + num(c.recall) + num(c.f1) + String(c.support).padStart(10));
  lines.push("");
  lines.push("accuracy".padStart(width) + " " + " ".repeat(20) + num(report.accuracy) + String(report.total).padStart(10));
  lines.push("macro avg".padStart(width) + " " + num(report.macro.precision) + num(report.macro.recall) + num(report.macro.f1) + String(report.total).padStart(10));
  lines.push("weighted avg".padStart(width) + " " + num(report.weighted.precision) + num(report.weighted.recall) + num(report.weighted.f1) + String(report.total).padStart(10));
  if (report.priority) {
    lines.push("", `priority classes (${report.priority.classes.join(", ")}): accuracy ${report.priority.accuracy.toFixed(digits)} over ${report.priority.support} samples`);
  }
  if (report.unparseable) lines.push(`unparseable predictions: ${report.unparseable} (counted as wrong)`);
  return lines.join("\n") + "\n";
}

function ngrams(tokens: string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join("\u0000");
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/**
 * Corpus BLEU-4 (Papineni et al., 2002) on whitespace tokens: clipped n-gram precisions pooled over the
 * corpus, geometric mean with uniform weights, brevity penalty against the closest reference length; no
 * smoothing (a zero precision gives 0), as NLTK's corpus_bleu by default. Returns a value in [0, 1].
 */
export function corpusBleu(hypotheses: string[], references: string[][], maxN = 4): number {
  if (hypotheses.length !== references.length) throw new Error(`${hypotheses.length} hypotheses but ${references.length} reference lists`);
  const matched = new Array<number>(maxN).fill(0);
  const possible = new Array<number>(maxN).fill(0);
  let hypLength = 0;
  let refLength = 0;
  hypotheses.forEach((hyp, i) => {
    const h = hyp.split(/\s+/).filter(Boolean);
    const refs = references[i].map((r) => r.split(/\s+/).filter(Boolean));
    if (refs.length === 0) throw new Error(`hypothesis ${i} has no reference`);
    hypLength += h.length;
    refLength += refs.map((r) => r.length).reduce((best, len) => (Math.abs(len - h.length) < Math.abs(best - h.length) || (Math.abs(len - h.length) === Math.abs(best - h.length) && len < best) ? len : best));
    for (let n = 1; n <= maxN; n++) {
      const counts = ngrams(h, n);
      const maxRef = new Map<string, number>();
      for (const r of refs) for (const [g, c] of ngrams(r, n)) maxRef.set(g, Math.max(maxRef.get(g) ?? 0, c));
      for (const [g, c] of counts) matched[n - 1] += Math.min(c, maxRef.get(g) ?? 0);
      possible[n - 1] += Math.max(0, h.length - n + 1);
    }
  });
  if (matched.some((m) => m === 0)) return 0;
  const logPrecision = matched.reduce((s, m, i) => s + Math.log(m / possible[i]), 0) / maxN;
  const brevity = hypLength > refLength ? 1 : Math.exp(1 - refLength / Math.max(1, hypLength));
  return brevity * Math.exp(logPrecision);
}
