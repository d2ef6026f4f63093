// The package resolves by its own name from the repository root (package.json "exports"), as users import it.
import { test } from "node:test";
import assert from "node:assert/strict";

test("import from 'vlmkit' resolves the built package root", async () => {
  const viaName = await import("vlmkit");
  const viaPath = await import("../../src/index.js");
  assert.equal(viaName.Tensor, viaPath.Tensor, "self-reference must load the same module as the relative path");
  for (const name of ["tensor", "tidy", "readSafetensors", "Linear", "F", "cuda", "manualSeed"]) {
    assert.ok(name in viaName, `'${name}' is exported from the package root`);
  }
  const t = viaName.tensor([1, 2, 3]);
  assert.deepEqual(t.toArray(), [1, 2, 3]);
  t.dispose();
});
