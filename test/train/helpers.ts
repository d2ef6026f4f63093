// Tiny tasks and data for the trainer tests: a classifier with dropout on generated 2-class / 3-class data, and a
// linear regression whose AdamW trajectory is recomputed in float64 JS.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { F, LayerNorm, Linear, Module, Dropout, manualSeed, noGrad, tensor, type Tensor } from "../../src/torch/index.js";
import type { Batch, DataSource, TrainTask } from "../../src/train/index.js";
import { seededRandom } from "../../src/train/index.js";

export function temporaryRunDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `vlmkit-train-${label}-`));
}

// ---- classification ----

export interface ClassBatch extends Batch {
  x: Tensor;
  y: Tensor;
  labels: number[];
}

/** Points in 4-d whose class is the argmax of a fixed linear map (learnable by a small MLP). */
export function makeClassData(count: number, seed: number, classes = 3): { features: number[][]; labels: number[] } {
  const random = seededRandom(seed);
  const map = [
    [1, -1, 0.5, 0],
    [-0.5, 1, 1, -1],
    [0, 0.5, -1, 1],
  ].slice(0, classes);
  const features: number[][] = [];
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const x = [0, 1, 2, 3].map(() => Math.fround(random() * 2 - 1));
    const scores = map.map((row) => row.reduce((s, w, j) => s + w * x[j], 0));
    features.push(x);
    labels.push(scores.indexOf(Math.max(...scores)));
  }
  return { features, labels };
}

export function classSource(data: { features: number[][]; labels: number[] }, device = "cpu"): DataSource<ClassBatch> {
  return {
    length: data.labels.length,
    batch(indices: number[]): ClassBatch {
      const labels = indices.map((i) => data.labels[i]);
      return {
        size: indices.length,
        x: tensor(indices.map((i) => data.features[i]), { device }),
        y: tensor(labels, { dtype: "int64", device }),
        labels,
      };
    },
  };
}

export class TinyClassifier extends Module {
  fc: Linear;
  norm: LayerNorm;
  drop: Dropout;
  out: Linear;
  constructor(classes = 3, dropout = 0.3) {
    super();
    this.fc = new Linear(4, 16);
    this.norm = new LayerNorm(16);
    this.drop = new Dropout(dropout);
    this.out = new Linear(16, classes);
  }
  forward(x: Tensor): Tensor {
    return this.out.forward(this.drop.forward(F.gelu(this.norm.forward(this.fc.forward(x)))));
  }
}

/** A TrainTask over TinyClassifier: cross-entropy, accuracy; weights initialised from initSeed. */
export class ClassifierTask implements TrainTask<ClassBatch> {
  readonly model: TinyClassifier;
  lossCalls = 0;
  /** Per loss call: its loss value and the batch's correct / total counts. */
  history: { loss: number; correct: number; total: number }[] = [];
  /** Loss calls (0-based) that return NaN / Infinity instead of the loss. */
  poisonedCalls = new Map<number, number>();

  constructor(initSeed: number, options: { classes?: number; dropout?: number; device?: string } = {}) {
    manualSeed(initSeed);
    this.model = new TinyClassifier(options.classes ?? 3, options.dropout ?? 0.3);
    if (options.device) this.model.to(options.device);
  }
  trainableModules(): Module[] {
    return [this.model];
  }
  loss(batch: ClassBatch) {
    const call = this.lossCalls++;
    const logits = this.model.forward(batch.x);
    let loss = F.crossEntropy(logits, batch.y);
    const poison = this.poisonedCalls.get(call);
    if (poison !== undefined) loss = loss.mul(poison);
    const predicted = logits.argmax(1).dataAsNumbers();
    const correct = predicted.filter((p, i) => p === batch.labels[i]).length;
    this.history.push({ loss: loss.item(), correct, total: batch.size });
    return { loss, correct, total: batch.size };
  }
  evaluate(data: DataSource<ClassBatch>, batchSize: number): Record<string, number> {
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < data.length; start += batchSize) {
      const indices = Array.from({ length: Math.min(batchSize, data.length - start) }, (_, i) => start + i);
      const batch = data.batch(indices);
      const logits = this.model.forward(batch.x);
      lossSum += F.crossEntropy(logits, batch.y, { reduction: "sum" }).item();
      correct += logits.argmax(1).dataAsNumbers().filter((p, i) => p === batch.labels[i]).length;
    }
    return { accuracy: correct / data.length, loss: lossSum / data.length };
  }
  checkpointTensors(): Map<string, Tensor> {
    return this.model.stateDict();
  }
  loadCheckpointTensors(tensors: Map<string, Tensor>): void {
    this.model.loadStateDict(tensors);
  }
}

/** Copies of every weight, by name, as float64 numbers. */
export function snapshot(module: Module): Map<string, number[]> {
  return new Map([...module.stateDict()].map(([name, t]) => [name, t.dataAsNumbers()]));
}

// ---- regression with a float64 JS reference ----

export interface RegressionBatch extends Batch {
  x: Tensor;
  y: Tensor;
}

export class LinearRegressor extends Module {
  fc: Linear;
  constructor(inFeatures: number) {
    super();
    this.fc = new Linear(inFeatures, 1);
  }
}

export function makeRegressionData(count: number, inFeatures: number, seed: number): { x: number[][]; y: number[] } {
  const random = seededRandom(seed);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < count; i++) {
    const row = Array.from({ length: inFeatures }, () => Math.fround(random() * 4 - 2));
    x.push(row);
    y.push(Math.fround(row.reduce((s, v, j) => s + v * (j + 1), 0.5) + (random() - 0.5)));
  }
  return { x, y };
}

export function regressionSource(data: { x: number[][]; y: number[] }): DataSource<RegressionBatch> {
  return {
    length: data.y.length,
    batch: (indices) => ({
      size: indices.length,
      x: tensor(indices.map((i) => data.x[i]), { dtype: "float64" }),
      y: tensor(indices.map((i) => [data.y[i]]), { dtype: "float64" }),
    }),
  };
}

/** Mean squared error of a float64 linear model (float64 so the JS reference can match to ~1e-12). */
export class RegressionTask implements TrainTask<RegressionBatch> {
  readonly model: LinearRegressor;
  constructor(inFeatures: number, initialWeight: number[], initialBias: number) {
    this.model = new LinearRegressor(inFeatures).to("float64");
    noGrad(() => {
      this.model.fc.weight.copy_(tensor([initialWeight], { dtype: "float64" }));
      this.model.fc.bias!.copy_(tensor([initialBias], { dtype: "float64" }));
    });
  }
  trainableModules(): Module[] {
    return [this.model];
  }
  loss(batch: RegressionBatch) {
    return { loss: F.mseLoss(this.model.fc.forward(batch.x), batch.y) };
  }
  evaluate(): Record<string, number> {
    return {};
  }
  checkpointTensors(): Map<string, Tensor> {
    return this.model.stateDict();
  }
  loadCheckpointTensors(tensors: Map<string, Tensor>): void {
    this.model.loadStateDict(tensors);
  }
}

export interface ReferenceOptions {
  lr: (step: number) => number;
  weightDecay: number;
  maxGradNorm: number | null;
  /** Micro-batches (lists of sample indices) of each optimizer step. */
  steps: number[][][];
}

/**
 * Float64 reference of the trainer on the regression task: per step, the gradient of the mean of the micro-batch
 * MSE means, clipping, then torch.optim.AdamW (decay on the weight matrix only, betas 0.9/0.999, eps 1e-8).
 */
export function referenceRegression(data: { x: number[][]; y: number[] }, w0: number[], b0: number, options: ReferenceOptions) {
  const w = [...w0];
  let b = b0;
  const params = () => [...w, b];
  const m = new Array(w.length + 1).fill(0);
  const v = new Array(w.length + 1).fill(0);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  const gradNorms: number[] = [];
  options.steps.forEach((microBatches, s) => {
    const grad = new Array(w.length + 1).fill(0);
    for (const indices of microBatches) {
      for (const i of indices) {
        const residual = data.x[i].reduce((acc, xv, j) => acc + w[j] * xv, b) - data.y[i];
        const scale = (2 * residual) / indices.length / microBatches.length;
        data.x[i].forEach((xv, j) => (grad[j] += scale * xv));
        grad[w.length] += scale;
      }
    }
    const norm = Math.sqrt(grad.reduce((acc, g) => acc + g * g, 0));
    gradNorms.push(norm);
    if (options.maxGradNorm !== null) {
      const coef = Math.min(1, options.maxGradNorm / (norm + 1e-6));
      for (let j = 0; j < grad.length; j++) grad[j] *= coef;
    }
    const lr = options.lr(s);
    const t = s + 1;
    const current = params();
    for (let j = 0; j < grad.length; j++) {
      const decay = j < w.length ? options.weightDecay : 0;
      current[j] *= 1 - lr * decay;
      m[j] = beta1 * m[j] + (1 - beta1) * grad[j];
      v[j] = beta2 * v[j] + (1 - beta2) * grad[j] * grad[j];
      const mHat = m[j] / (1 - beta1 ** t);
      const vHat = v[j] / (1 - beta2 ** t);
      current[j] -= (lr * mHat) / (Math.sqrt(vHat) + eps);
    }
    for (let j = 0; j < w.length; j++) w[j] = current[j];
    b = current[w.length];
  });
  return { weight: w, bias: b, gradNorms };
}

export function assertAllClose(actual: number[], expected: number[], what: string, tolerance = 1e-9): void {
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  actual.forEach((a, i) => {
    const e = expected[i];
    if (!(Math.abs(a - e) <= tolerance * (1 + Math.abs(e)))) throw new Error(`${what}[${i}]: got ${a}, expected ${e}`);
  });
}
