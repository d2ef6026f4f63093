// Shared by the model tests: fixture folders and their goldens (written by tools/reference/make_fixtures.py),
// and tolerance checks.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor, tidy, dispose } from "../../src/index.js";
import { readSafetensors } from "../../src/torch/safetensors.js";

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

/** A skip reason when the fixture's goldens or `requiredFile` are absent, else false. */
export function missingFixture(name: string, requiredFile: string): string | false {
  const folder = fixturePath(name);
  return existsSync(join(folder, "goldens.safetensors")) && existsSync(join(folder, requiredFile))
    ? false
    : `fixtures/${name} is absent: run python3 tools/reference/make_fixtures.py fixtures`;
}

export function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

export interface Goldens {
  tensors: Map<string, Tensor>;
  meta: Record<string, unknown>;
  has(name: string): boolean;
  get(name: string): Tensor;
  names(): string[];
  dispose(): void;
}

export function readGoldens(name: string): Goldens {
  const folder = fixturePath(name);
  const tensors = readSafetensors(join(folder, "goldens.safetensors"));
  return {
    tensors,
    meta: readJson(join(folder, "goldens.json")),
    has: (key) => tensors.has(key),
    get(key) {
      const t = tensors.get(key);
      if (!t) throw new Error(`fixtures/${name}/goldens.safetensors has no '${key}'`);
      return t;
    },
    names: () => [...tensors.keys()],
    dispose: () => dispose([...tensors.values()]),
  };
}

/** Largest |a - b| in float64 (shapes must agree). */
export function maxAbsDiff(actual: Tensor, expected: Tensor): number {
  assert.deepEqual(actual.shape, expected.shape, `shape [${actual.shape}] != expected [${expected.shape}]`);
  return tidy(() => actual.to("float64").sub(expected.to("float64")).abs().max().item());
}

export function maxAbs(a: Tensor): number {
  return tidy(() => a.to("float64").abs().max().item());
}

/** Asserts max |actual - expected| <= tolerance, naming what is compared. */
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
  const scale = maxAbs(expected);
  const relative = diff / Math.max(scale, noiseFloor, 1e-30);
  assert.ok(relative <= tolerance, `${what}: relative diff ${relative.toExponential(3)} (abs ${diff.toExponential(3)}, scale ${scale.toExponential(3)}) > ${tolerance}`);
}
