// Shared by the CLIP / SigLIP / LLaVA tests: fixture folders, goldens, loading and tolerance checks.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor, tidy, dispose } from "../../src/index.js";
import type { Module } from "../../src/torch/nn/index.js";
import { SafetensorsCheckpoint, readSafetensors } from "../../src/torch/safetensors.js";

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the repository root (package.json)");
    dir = parent;
  }
  return dir;
}

export const REPO_ROOT = repoRoot();
export const FIXTURES = join(REPO_ROOT, "fixtures");

export const fixturePath = (name: string) => join(FIXTURES, name);

/** A skip reason when the fixture or its goldens are absent, else false. */
export function missingFixture(name: string): string | false {
  const folder = fixturePath(name);
  return existsSync(join(folder, "goldens.safetensors")) && existsSync(join(folder, "model.safetensors"))
    ? false
    : `fixtures/${name} is absent: run python3 tools/reference/make_fixtures.py`;
}

export function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

export interface Goldens {
  tensors: Map<string, Tensor>;
  meta: Record<string, unknown>;
  get(name: string): Tensor;
  dispose(): void;
}

export function readGoldens(name: string): Goldens {
  const folder = fixturePath(name);
  const tensors = readSafetensors(join(folder, "goldens.safetensors"));
  const meta = readJson(join(folder, "goldens.json"));
  return {
    tensors,
    meta,
    get(key: string): Tensor {
      const t = tensors.get(key);
      if (!t) throw new Error(`fixtures/${name}/goldens.safetensors has no '${key}'`);
      return t;
    },
    dispose() {
      dispose([...tensors.values()]);
    },
  };
}

/**
 * Loads a safetensors checkpoint into model through renameKey (null drops a key); every module tensor must
 * be found, every kept checkpoint tensor must have a place, shapes must agree.
 */
export function loadCheckpoint(model: Module, folder: string, renameKey: (name: string) => string | null = (n) => n): void {
  const checkpoint = new SafetensorsCheckpoint(folder);
  const state = new Map<string, Tensor>();
  try {
    for (const key of checkpoint.keys()) {
      const name = renameKey(key);
      if (name === null) continue;
      if (state.has(name)) throw new Error(`two checkpoint keys map to ${name}`);
      state.set(name, checkpoint.get(key, { dtype: "float32" }));
    }
    model.loadStateDict(state);
  } finally {
    dispose([...state.values()]);
  }
}

/** Largest |a - b| (shapes must agree). */
export function maxAbsDiff(actual: Tensor, expected: Tensor): number {
  assert.deepEqual(actual.shape, expected.shape, `shape [${actual.shape}] != expected [${expected.shape}]`);
  return tidy(() => actual.to("float64").sub(expected.to("float64")).abs().max().item());
}

export function assertClose(actual: Tensor, expected: Tensor, tolerance: number, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape [${actual.shape}] != expected [${expected.shape}]`);
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff <= tolerance, `${what}: max abs diff ${diff.toExponential(3)} > ${tolerance}`);
}

/**
 * max |a - b| / max |b| <= tolerance (gradients, whose scale varies by parameter). A gradient that is zero in
 * exact arithmetic (a key projection's bias: softmax ignores a shift shared by all keys) is rounding noise on
 * both sides, so below noiseFloor (an absolute magnitude) the difference is compared to noiseFloor instead.
 */
export function assertRelativeClose(actual: Tensor, expected: Tensor, tolerance: number, what: string, noiseFloor = 0): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape [${actual.shape}] != expected [${expected.shape}]`);
  const diff = maxAbsDiff(actual, expected);
  const scale = tidy(() => expected.to("float64").abs().max().item());
  const relative = diff / Math.max(scale, noiseFloor, 1e-30);
  assert.ok(relative <= tolerance, `${what}: relative diff ${relative.toExponential(3)} (abs ${diff.toExponential(3)}, scale ${scale.toExponential(3)}) > ${tolerance}`);
}

/** Tolerances of the parity issue: hidden states and logits, loss, gradients (relative). */
export const TOLERANCE = { hidden: 1e-4, loss: 1e-5, gradRelative: 1e-4 };
