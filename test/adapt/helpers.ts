// Shared by the adapter tests: fixture paths, models with their golden inputs, comparisons.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor, tidy, noGrad, dispose, readSafetensors } from "../../src/torch/index.js";
import type { Module } from "../../src/torch/nn/index.js";
import { loadPretrained } from "../../src/models/index.js";
import { REPO_ROOT } from "../models/vision_helpers.js";

export { REPO_ROOT };
export const fixture = (name: string) => join(REPO_ROOT, "fixtures", name);
export const LLAVA = fixture("llava-layer-int");
export const LLAMA = fixture("llama-gqa-untied");
export const tmp = () => mkdtempSync(join(tmpdir(), "vlmkit-lora-"));

export interface ForwardModel extends Module {
  forward(inputs: Record<string, Tensor | undefined>): { logits: Tensor; loss?: Tensor };
}

export async function load(dir: string): Promise<ForwardModel> {
  return (await loadPretrained(dir)) as unknown as ForwardModel;
}

/** A base fixture's golden inputs: forward() argument -> goldens.safetensors key. */
export function goldenInputs(baseDir: string, names: Record<string, string>): { inputs: Record<string, Tensor>; dispose(): void } {
  const goldens = readSafetensors(join(baseDir, "goldens.safetensors"));
  const inputs: Record<string, Tensor> = {};
  for (const [arg, key] of Object.entries(names)) {
    const t = goldens.get(key);
    if (!t) throw new Error(`${baseDir}/goldens.safetensors has no '${key}'`);
    inputs[arg] = t;
  }
  return { inputs, dispose: () => dispose([...goldens.values()]) };
}

export const LLAVA_INPUTS = { input_ids: "inputs.input_ids", attention_mask: "inputs.attention_mask", pixel_values: "inputs.pixel_values" };
export const LLAVA_LABELS = { ...LLAVA_INPUTS, labels: "inputs.labels" };
export const LLAMA_INPUTS = { input_ids: "forward.input_ids", attention_mask: "forward.attention_mask" };

export function logitsOf(model: ForwardModel, inputs: Record<string, Tensor>): Tensor {
  return noGrad(() => tidy(() => model.forward(inputs).logits));
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  assert.deepEqual(a.shape, b.shape, `shape [${a.shape}] != [${b.shape}]`);
  return tidy(() => a.to("float64").sub(b.to("float64")).abs().max().item());
}

export function assertClose(actual: Tensor, expected: Tensor, tolerance: number, what: string): void {
  const diff = maxAbsDiff(actual, expected);
  assert.ok(diff <= tolerance, `${what}: max abs diff ${diff.toExponential(3)} > ${tolerance}`);
}

/** max |a - b| / max |b| <= tolerance (gradients, whose scale varies). */
export function assertRelativeClose(actual: Tensor, expected: Tensor, tolerance: number, what: string): void {
  const diff = maxAbsDiff(actual, expected);
  const scale = tidy(() => expected.to("float64").abs().max().item());
  assert.ok(diff / Math.max(scale, 1e-30) <= tolerance, `${what}: relative diff ${(diff / scale).toExponential(3)} (abs ${diff.toExponential(3)}) > ${tolerance}`);
}

export function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
}

export const present = (...paths: string[]) => paths.every((p) => existsSync(p));
