// A classification head on backbone hidden states: pooling over tokens (last non-padding token, masked mean,
// or the first / CLS token), then Linear -> LayerNorm -> GELU -> Dropout -> Linear (or one Linear).
import { Tensor, tidy, F } from "../torch/index.js";
import { poolHidden, type Pooling } from "../models/common/pooling.js";
import { Module, Linear, LayerNorm, GELU, Dropout } from "../torch/nn/index.js";

export { poolHidden, type Pooling } from "../models/common/pooling.js";

export interface ClassificationHeadOptions {
  inputSize: number;
  numClasses: number;
  /** Hidden size of the two-layer head; 0 gives a single Linear (a linear probe). */
  hiddenSize?: number;
  dropout?: number;
  layerNormEps?: number;
}

/** dense -> norm -> GELU -> dropout -> out_proj, or out_proj alone when hiddenSize is 0. */
export class ClassificationHead extends Module {
  dense: Linear | null;
  norm: LayerNorm | null;
  act: GELU | null;
  dropout: Dropout;
  out_proj: Linear;
  readonly numClasses: number;

  constructor(options: ClassificationHeadOptions) {
    super();
    const hidden = options.hiddenSize ?? 512;
    if (!Number.isInteger(options.numClasses) || options.numClasses < 2) throw new Error(`a classification head needs at least 2 classes, got ${options.numClasses}`);
    this.numClasses = options.numClasses;
    this.dense = hidden > 0 ? new Linear(options.inputSize, hidden) : null;
    this.norm = hidden > 0 ? new LayerNorm([hidden], { eps: options.layerNormEps ?? 1e-5 }) : null;
    this.act = hidden > 0 ? new GELU() : null;
    this.dropout = new Dropout(options.dropout ?? 0.1);
    this.out_proj = new Linear(hidden > 0 ? hidden : options.inputSize, options.numClasses);
  }

  /** features [batch, inputSize] -> logits [batch, numClasses] */
  forward(features: Tensor): Tensor {
    return tidy(() => {
      let x = features;
      if (this.dense && this.norm && this.act) x = this.act.forward(this.norm.forward(this.dense.forward(x)));
      return this.out_proj.forward(this.dropout.forward(x));
    });
  }
}

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

/** The k most likely classes of each row of logits, with softmax probabilities. */
export function topKPredictions(logits: Tensor, labels: string[], k = 5): Prediction[][] {
  if (logits.ndim !== 2 || logits.shape[1] !== labels.length) throw new Error(`logits [${logits.shape}] do not match ${labels.length} labels`);
  return tidy(() => {
    const { values, indices } = F.softmax(logits.float(), -1).topk(Math.min(k, labels.length), -1);
    const probs = values.toArray() as number[][];
    const ids = indices.toArray() as number[][];
    return ids.map((row, i) => row.map((index, j) => ({ label: labels[index], index, probability: probs[i][j] })));
  });
}
