// The order in which a training run visits its samples: a seeded shuffle per epoch (seed + epoch), so a
// resumed run can rebuild an epoch's order and skip exactly the micro-batches it had already consumed.
import { seededRandom, shuffledIndices } from "../torch/seeded_random.js";

export { seededRandom };

// Mixes seed and epoch so that neighbouring (seed, epoch) pairs give unrelated streams.
function mixSeed(seed: number, epoch: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul((epoch + 1) >>> 0, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  return h >>> 0;
}

/** The sample indices of one epoch: 0..length-1 shuffled by Fisher-Yates with seed + epoch (or in order). */
export function epochOrder(length: number, seed: number, epoch: number, shuffle = true): number[] {
  if (!shuffle) return Array.from({ length }, (_, i) => i);
  return shuffledIndices(length, seededRandom(mixSeed(seed, epoch)));
}

/** One epoch cut into micro-batches of batchSize (the last may be smaller), grouped into optimizer steps. */
export interface EpochPlan {
  /** Sample indices of each micro-batch, in visiting order. */
  microBatches: number[][];
  /** Optimizer steps: each is a run of consecutive micro-batch numbers [first, end). The last may be short. */
  steps: { first: number; end: number }[];
}

export function planEpoch(length: number, batchSize: number, gradAccumulation: number, seed: number, epoch: number, shuffle = true): EpochPlan {
  const order = epochOrder(length, seed, epoch, shuffle);
  const microBatches: number[][] = [];
  for (let start = 0; start < length; start += batchSize) microBatches.push(order.slice(start, start + batchSize));
  const steps: { first: number; end: number }[] = [];
  for (let first = 0; first < microBatches.length; first += gradAccumulation) {
    steps.push({ first, end: Math.min(first + gradAccumulation, microBatches.length) });
  }
  return { microBatches, steps };
}

/** Optimizer steps in one epoch: ceil(ceil(length / batchSize) / gradAccumulation). */
export function stepsPerEpoch(length: number, batchSize: number, gradAccumulation: number): number {
  return Math.ceil(Math.ceil(length / batchSize) / gradAccumulation);
}
