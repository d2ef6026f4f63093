// Shared by the CLIP / SigLIP / LLaVA tests: fixture folders, goldens, loading and tolerance checks.
import { Tensor, dispose } from "../../src/index.js";
import type { Module } from "../../src/torch/nn/index.js";
import { SafetensorsCheckpoint } from "../../src/torch/safetensors.js";
import { missingFixture as missingFixtureFile } from "./fixture_helpers.js";

export { REPO_ROOT, FIXTURES, fixturePath, readJson, readGoldens, maxAbsDiff, assertClose, assertRelativeClose, type Goldens } from "./fixture_helpers.js";

/** A skip reason when the fixture (model.safetensors and goldens) is absent, else false. */
export function missingFixture(name: string): string | false {
  return missingFixtureFile(name, "model.safetensors");
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

/** Tolerances of the parity issue: hidden states and logits, loss, gradients (relative). */
export const TOLERANCE = { hidden: 1e-4, loss: 1e-5, gradRelative: 1e-4 };
