// Adapters written by vlmkit load in Python PEFT with identical outputs. fixtures/lora-ours/ holds our
// adapters (tools/make_our_adapter.mjs); tools/reference/check_peft_loads.py loads each into PEFT, checks
// that PEFT holds exactly the file's tensors, and records PEFT's logits in peft_logits.safetensors. Here the
// same adapters are loaded by vlmkit and must give PEFT's logits. Skipped until the reference run has been made.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { dispose, readSafetensors } from "../../src/torch/index.js";
import { loadAdapter, saveAdapter, mergeAdapters, loraLayers, peftNaming } from "../../src/adapt/index.js";
import { OUR_ADAPTERS } from "./our_adapters.js";
import { REPO_ROOT, assertClose, goldenInputs, load, logitsOf, maxAbsDiff, readJson, tmp } from "./helpers.js";

const OURS = join(REPO_ROOT, "fixtures", "lora-ours");
const PEFT_LOGITS = join(OURS, "peft_logits.safetensors");
const REPORT = join(OURS, "peft_report.json");
const skip = !(existsSync(PEFT_LOGITS) && existsSync(REPORT)) &&
  "fixtures/lora-ours/peft_logits.safetensors is absent: run node tools/make_our_adapter.mjs, then python3 tools/reference/check_peft_loads.py fixtures/lora-ours";

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

interface AdapterReport {
  "adapter_model.safetensors": string;
  "adapter_config.json": string;
  lora_modules: string[];
  modules_to_save: string[];
  tensors: number;
}

test("every adapter of fixtures/lora-ours is listed in manifest.json as made by our_adapters.ts", { skip: !existsSync(join(OURS, "manifest.json")) && "fixtures/lora-ours is absent: run node tools/make_our_adapter.mjs" }, () => {
  const manifest = readJson(join(OURS, "manifest.json")) as { adapters: { name: string; base: string; inputs: Record<string, string> }[] };
  assert.deepEqual(manifest.adapters.map((a) => a.name), OUR_ADAPTERS.map((a) => a.name));
  for (const spec of OUR_ADAPTERS) {
    for (const file of ["adapter_config.json", "adapter_model.safetensors"]) assert.ok(existsSync(join(OURS, spec.name, file)), `${spec.name}/${file}`);
  }
});

test("our committed adapters load back into vlmkit, change the logits, and save again to the same files", { skip: !existsSync(join(OURS, "manifest.json")) && "fixtures/lora-ours is absent: run node tools/make_our_adapter.mjs" }, async () => {
  for (const spec of OUR_ADAPTERS) {
    const dir = join(OURS, spec.name);
    const baseDir = join(REPO_ROOT, spec.base);
    const { inputs, dispose: free } = goldenInputs(baseDir, spec.inputs);
    const model = await load(baseDir);
    const before = logitsOf(model, inputs);
    await loadAdapter(model, dir);
    assert.ok(maxAbsDiff(logitsOf(model, inputs), before) > 1e-3, `${spec.name} changes the logits`);
    const again = join(tmp(), spec.name);
    saveAdapter(model, again);
    assert.deepEqual(readJson(join(again, "adapter_config.json")), readJson(join(dir, "adapter_config.json")), `${spec.name} config`);
    const [a, b] = [readSafetensors(join(dir, "adapter_model.safetensors")), readSafetensors(join(again, "adapter_model.safetensors"))];
    assert.deepEqual([...b.keys()], [...a.keys()]);
    for (const [key, t] of a) assert.ok(t.equal(b.get(key)!), `${spec.name}: ${key}`);
    dispose([...a.values(), ...b.values(), before]);
    free();
    model.dispose();
  }
});

for (const spec of OUR_ADAPTERS) {
  test(`${spec.name}: PEFT loads our adapter and gives the logits vlmkit gives (active and merged)`, { skip }, async () => {
    const dir = join(OURS, spec.name);
    const report = (readJson(REPORT).adapters as Record<string, AdapterReport>)[spec.name];
    assert.ok(report, `peft_report.json has no entry for ${spec.name}: rerun check_peft_loads.py`);
    for (const file of ["adapter_model.safetensors", "adapter_config.json"] as const) {
      assert.equal(sha256(join(dir, file)), report[file], `${spec.name}/${file} changed since check_peft_loads.py ran: rerun it`);
    }
    const peft = readSafetensors(PEFT_LOGITS);
    const baseDir = join(REPO_ROOT, spec.base);
    const { inputs, dispose: free } = goldenInputs(baseDir, spec.inputs);
    const model = await load(baseDir);
    const loaded = await loadAdapter(model, dir);
    const naming = peftNaming(model);
    assert.deepEqual(loaded.wrapped.map((p) => naming.toPeft(p)).sort(), [...report.lora_modules].sort(), "PEFT put LoRA on the same layers");
    assert.equal(loaded.loadedKeys, report.tensors);
    assertClose(logitsOf(model, inputs), peft.get(`${spec.name}.logits`)!, 1e-4, `${spec.name} logits`);
    mergeAdapters(model);
    assertClose(logitsOf(model, inputs), peft.get(`${spec.name}.merged_logits`)!, 1e-4, `${spec.name} merged logits`);
    assert.ok(loraLayers(model).every(([, l]) => l.merged));
    dispose([...peft.values()]);
    free();
    model.dispose();
  });
}
