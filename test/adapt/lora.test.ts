// LoRA layers and per-component adaptation: the math against a float64 reference, merge/unmerge, component
// scoping, gradients only into adapters, PEFT-format save/load round trips and bad adapter files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Linear, LoRALinear, adaptModel, saveAdapter, loadAdapter, mergeAdapters, unmergeAdapters, loraLayers, matchesTarget,
  loadPretrained, readSafetensors, writeSafetensors, tensor, randn, tidy, noGrad, manualSeed, type Module, type Tensor,
} from "../../src/index.js";

const LLAVA = "fixtures/llava-layer-int";
const tmp = () => mkdtempSync(join(tmpdir(), "vlmkit-lora-"));

function rows(t: Tensor): number[][] {
  return t.toArray() as number[][];
}
const matmulT = (x: number[][], w: number[][]) => x.map((row) => w.map((wr) => wr.reduce((s, v, k) => s + v * row[k], 0)));

test("LoRALinear computes base(x) + scaling * B(A(x)), with alpha/r or alpha/sqrt(r)", () => {
  manualSeed(0);
  for (const rslora of [false, true]) {
    const base = new Linear(5, 3, { dtype: "float64" });
    const layer = new LoRALinear(base, { r: 4, alpha: 8, rslora });
    noGrad(() => layer.lora_B.weight.copy_(randn([3, 4], { dtype: "float64" })));
    const x = randn([2, 5], { dtype: "float64" });
    const scaling = rslora ? 8 / Math.sqrt(4) : 8 / 4;
    assert.equal(layer.scaling, scaling);
    const xs = rows(x);
    const baseOut = matmulT(xs, rows(base.weight)).map((r) => r.map((v, j) => v + (base.bias!.toArray() as number[])[j]));
    const update = matmulT(matmulT(xs, rows(layer.lora_A.weight)), rows(layer.lora_B.weight));
    const expected = baseOut.map((r, i) => r.map((v, j) => v + scaling * update[i][j]));
    const actual = rows(layer.forward(x));
    actual.forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - expected[i][j]) < 1e-12, `row ${i} col ${j}: ${v} vs ${expected[i][j]}`)));
    assert.equal(base.weight.requiresGrad, false, "the base layer is frozen");
    layer.dispose();
  }
});

test("B starts at zero (a new adapter changes nothing); merge folds B·A·scaling into the base and unmerge restores it", () => {
  manualSeed(1);
  const base = new Linear(6, 4, { dtype: "float64" });
  const before = base.weight.clone();
  const x = randn([3, 6], { dtype: "float64" });
  const plain = base.forward(x);
  const layer = new LoRALinear(base, { r: 2, alpha: 4 });
  assert.ok(layer.forward(x).allclose(plain, 0, 0), "zero-initialised B makes the adapter a no-op");
  noGrad(() => layer.lora_B.weight.copy_(randn([4, 2], { dtype: "float64" })));
  const adapted = layer.forward(x);
  assert.ok(!adapted.allclose(plain, 1e-6, 1e-6));
  layer.merge();
  assert.ok(layer.forward(x).allclose(adapted, 1e-12, 1e-12), "merged output equals adapter output");
  assert.ok(!base.weight.allclose(before, 1e-6, 1e-6), "the base weight changed");
  layer.unmerge();
  assert.ok(base.weight.allclose(before, 1e-12, 1e-12), "unmerge restores the base weight");
  assert.ok(layer.forward(x).allclose(adapted, 1e-12, 1e-12));
  layer.dispose();
});

test("target_modules follow PEFT: names match path suffixes, a string must match the whole path", () => {
  assert.ok(matchesTarget("model.language_model.layers.0.self_attn.q_proj", ["q_proj"]));
  assert.ok(!matchesTarget("model.language_model.layers.0.self_attn.xq_proj", ["q_proj"]));
  assert.ok(matchesTarget("a.layers.1.mlp.up_proj", ".*layers\\.1\\..*(up|down)_proj"));
  assert.ok(!matchesTarget("a.layers.1.mlp.up_proj", "up_proj"), "a regex is a full match, not a search");
});

async function llava(): Promise<Module & { forward(inputs: object): { logits: Tensor; loss?: Tensor } }> {
  return (await loadPretrained(LLAVA)) as never;
}

function goldenInputs() {
  const g = readSafetensors(join(LLAVA, "goldens.safetensors"));
  return { input_ids: g.get("inputs.input_ids")!, attention_mask: g.get("inputs.attention_mask")!, pixel_values: g.get("inputs.pixel_values")!, labels: g.get("inputs.labels")! };
}

test("a language plan wraps only the language model's layers, never the vision tower's q_proj", async () => {
  const model = await llava();
  const lines: string[] = [];
  const { wrapped, trainable, report } = adaptModel(model, { language: { mode: "lora", r: 4, alpha: 8, targetModules: ["q_proj", "v_proj"] } }, (l) => lines.push(l));
  const layers = loraLayers(model).map(([p]) => p);
  assert.deepEqual(layers, wrapped.language);
  assert.ok(layers.length > 0 && layers.every((p) => p.startsWith("model.language_model.")), layers.join(", "));
  const towerLinears = model.namedModules().filter(([p, m]) => p.startsWith("model.vision_tower.") && p.endsWith("q_proj") && m instanceof Linear);
  assert.ok(towerLinears.length > 0, "the vision tower keeps its plain q_proj layers");
  const loraCount = loraLayers(model).reduce((n, [, l]) => n + l.lora_A.weight.numel() + l.lora_B.weight.numel(), 0);
  assert.equal(trainable.reduce((n, [, p]) => n + p.numel(), 0), loraCount, "only the adapters are trainable");
  assert.match(report, /^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: \d+\.\d{4}$/);
  assert.ok(lines.some((l) => l.startsWith("language: LoRA r=4 alpha=8 on ")), lines.join("\n"));
  model.dispose();
});

test("gradients reach the adapters and nothing else; 'full' unfreezes exactly its component", async () => {
  const model = await llava();
  adaptModel(model, { language: { mode: "lora", r: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "o_proj"] } });
  for (const [, l] of loraLayers(model)) noGrad(() => l.lora_B.weight.normal_(0, 0.02));
  const inputs = goldenInputs();
  model.train();
  tidy(() => model.forward(inputs).loss!.backward());
  for (const [name, p] of model.namedParameters()) {
    const isLora = /\.lora_[AB]\.weight$/.test(name);
    const g = p.grad;
    if (isLora) assert.ok(g !== null && g.abs().sum().item() > 0, `${name} gets a gradient`);
    else assert.equal(g, null, `${name} is frozen and gets none`);
    g?.dispose();
  }
  model.dispose();

  const full = await llava();
  adaptModel(full, { vision: { mode: "full" } });
  for (const [name, p] of full.namedParameters()) assert.equal(p.requiresGrad, name.startsWith("model.vision_tower."), name);
  full.dispose();
});

test("saveAdapter writes PEFT's files; loadAdapter into a fresh model gives identical logits", async () => {
  const model = await llava();
  adaptModel(model, { language: { mode: "lora", r: 4, alpha: 16, rslora: true, targetModules: ["q_proj", "v_proj"] } });
  manualSeed(3);
  for (const [, l] of loraLayers(model)) noGrad(() => l.lora_B.weight.normal_(0, 0.05));
  const inputs = goldenInputs();
  const expected = noGrad(() => model.forward(inputs).logits);
  const dir = join(tmp(), "adapter");
  saveAdapter(model, dir, { baseModelPath: LLAVA });
  const config = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
  assert.equal(config.peft_type, "LORA");
  assert.equal(config.r, 4);
  assert.equal(config.lora_alpha, 16);
  assert.equal(config.use_rslora, true);
  // The vision tower has q_proj/v_proj too, so PEFT gets a regex scoped to the language model.
  assert.equal(config.target_modules, "(?:model\\.language_model)\\..*\\.(?:q_proj|v_proj)");
  const keys = [...readSafetensors(join(dir, "adapter_model.safetensors")).keys()];
  assert.ok(keys.includes("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight"), keys.slice(0, 4).join(", "));
  assert.equal(keys.length, 2 * loraLayers(model).length);

  const fresh = await llava();
  const { wrapped } = loadAdapter(fresh, dir);
  assert.deepEqual(wrapped, loraLayers(model).map(([p]) => p));
  const actual = noGrad(() => fresh.forward(inputs).logits);
  assert.ok(actual.allclose(expected, 0, 1e-6), "same logits after the round trip");
  mergeAdapters(fresh);
  assert.ok(noGrad(() => fresh.forward(inputs).logits).allclose(expected, 1e-4, 1e-5), "merged weights give the adapter's logits");
  unmergeAdapters(fresh);
  model.dispose();
  fresh.dispose();
});

test("bad adapter folders get errors naming the file and the key", async () => {
  const model = await llava();
  adaptModel(model, { language: { mode: "lora", r: 2, alpha: 4, targetModules: ["q_proj"] } });
  const good = join(tmp(), "good");
  saveAdapter(model, good);
  model.dispose();
  const config = JSON.parse(readFileSync(join(good, "adapter_config.json"), "utf8"));
  const weights = readSafetensors(join(good, "adapter_model.safetensors"));
  const variant = (edit: (c: Record<string, unknown>, w: Map<string, Tensor>) => void) => {
    const dir = tmp();
    const c = structuredClone(config);
    const w = new Map(weights);
    edit(c, w);
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(c));
    writeSafetensors(join(dir, "adapter_model.safetensors"), w);
    return dir;
  };
  const cases: [string, string, RegExp][] = [
    ["DoRA", variant((c) => (c.use_dora = true)), /adapter_config\.json: use_dora is true/],
    ["wrong type", variant((c) => (c.peft_type = "IA3")), /peft_type is "IA3"/],
    ["missing key", variant((_, w) => w.delete("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_B.weight")), /missing base_model\.model\.model\.language_model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight/],
    ["rank mismatch", variant((c) => (c.r = 3)), /lora_A\.weight: file \[2,\d+\], model needs \[3,\d+\]/],
    ["unexpected key", variant((_, w) => w.set("base_model.model.model.language_model.layers.0.self_attn.zz_proj.lora_A.weight", tensor([1]))), /not in the model \(1\)/],
    ["no match", variant((c) => (c.target_modules = ["nothing_here"])), /match no Linear layer/],
  ];
  for (const [what, dir, message] of cases) {
    const fresh = await llava();
    assert.throws(() => loadAdapter(fresh, dir), message, what);
    assert.equal(loraLayers(fresh).length, 0, `${what}: a failed load leaves the model untouched`);
    fresh.dispose();
  }
  const empty = tmp();
  const fresh = await llava();
  assert.throws(() => loadAdapter(fresh, empty), /adapter_config\.json is missing/);
  assert.throws(() => adaptModel(fresh, { language: { mode: "lora", targetModules: ["nope"] } }), /match no Linear layer/);
  assert.throws(() => adaptModel(fresh, { head: { mode: "full" } } as never), /unknown component 'head'/);
  fresh.dispose();
});

test("a causal LM's adapter names its layers plainly (nothing else matches) and loads back", async () => {
  const dir = "fixtures/llama-gqa-untied";
  const model = (await loadPretrained(dir)) as Module;
  adaptModel(model, { language: { mode: "lora", r: 2, alpha: 2, targetModules: ["q_proj", "down_proj"] } });
  const out = join(tmp(), "adapter");
  saveAdapter(model, out);
  assert.deepEqual(JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")).target_modules, ["down_proj", "q_proj"]);
  const fresh = (await loadPretrained(dir)) as Module;
  assert.deepEqual(loadAdapter(fresh, out).wrapped, loraLayers(model).map(([p]) => p));
  model.dispose();
  fresh.dispose();
});
