// LoRA layers and per-component adaptation: the layer against a float64 reference, merge/unmerge, PEFT's
// matching rules, component scoping, gradients only into what is trainable, save/load round trips in PEFT's
// format (our files, older LLaVA layouts, checkpoint state), bad adapter files, and parity with adapters
// made by Python PEFT (fixtures/lora-*, from tools/reference/fixtures_lora.py; skipped when absent).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  Tensor, tensor, randn, tidy, noGrad, manualSeed, dispose, readSafetensors, writeSafetensors, liveTensorCount,
} from "../../src/torch/index.js";
import { Module, Linear } from "../../src/torch/nn/index.js";
import {
  LoRALinear, adaptModel, componentPrefixes, saveAdapter, loadAdapter, mergeAdapters, unmergeAdapters, removeAdapters,
  loraLayers, matchesTarget, peftSelects, adapterStateDict, loadAdapterStateDict, peftNaming, parseAdapterConfig,
  type AdaptationPlan, type PeftLoraConfig,
} from "../../src/adapt/index.js";
import { randomizeAdapter } from "./our_adapters.js";
import {
  LLAVA, LLAMA, fixture, tmp, load, goldenInputs, logitsOf, maxAbsDiff, assertClose, assertRelativeClose, readJson, present,
  LLAVA_INPUTS, LLAVA_LABELS, LLAMA_INPUTS, type ForwardModel,
} from "./helpers.js";

const rows = (t: Tensor) => t.toArray() as number[][];
/** x W^T for plain arrays (float64 reference). */
const matmulT = (x: number[][], w: number[][]) => x.map((row) => w.map((wr) => wr.reduce((s, v, k) => s + v * row[k], 0)));

// ---- the layer ----

test("LoRALinear computes base(x) + scaling * B(A(x)) with scaling alpha/r, or alpha/sqrt(r) with rsLoRA", () => {
  manualSeed(0);
  for (const rslora of [false, true]) {
    const base = new Linear(5, 3, { dtype: "float64" });
    const layer = new LoRALinear(base, { r: 4, alpha: 8, rslora });
    noGrad(() => layer.lora_B.weight.copy_(randn([3, 4], { dtype: "float64" })));
    const scaling = rslora ? 8 / Math.sqrt(4) : 8 / 4;
    assert.equal(layer.scaling, scaling);
    const x = randn([2, 5], { dtype: "float64" });
    const bias = base.bias!.toArray() as number[];
    const baseOut = matmulT(rows(x), rows(base.weight)).map((r) => r.map((v, j) => v + bias[j]));
    const update = matmulT(matmulT(rows(x), rows(layer.lora_A.weight)), rows(layer.lora_B.weight));
    const actual = rows(layer.forward(x));
    actual.forEach((r, i) => r.forEach((v, j) => assert.ok(Math.abs(v - (baseOut[i][j] + scaling * update[i][j])) < 1e-12, `rslora=${rslora} [${i}, ${j}]`)));
    assert.equal(base.weight.requiresGrad, false, "the base layer is frozen");
    assert.equal(layer.lora_A.weight.requiresGrad, true);
    assert.equal(layer.weight, base.weight, "layer.weight is the base weight, as in PEFT");
    layer.dispose();
    x.dispose();
  }
});

test("a new adapter is PEFT's init: A kaiming-uniform (bound 1/sqrt(in)), B zeros, so it changes nothing", () => {
  manualSeed(1);
  const base = new Linear(64, 16);
  const layer = new LoRALinear(base, { r: 8, alpha: 16 });
  const a = layer.lora_A.weight.dataAsNumbers();
  const bound = 1 / Math.sqrt(64);
  assert.ok(a.every((v) => Math.abs(v) <= bound), "inside the kaiming bound");
  assert.ok(Math.max(...a.map(Math.abs)) > 0.8 * bound, "and spread over it");
  assert.ok(layer.lora_B.weight.dataAsNumbers().every((v) => v === 0));
  const x = randn([3, 64]);
  assert.equal(maxAbsDiff(layer.forward(x), base.forward(x)), 0);
  assert.deepEqual(layer.lora_A.weight.shape, [8, 64]);
  assert.deepEqual(layer.lora_B.weight.shape, [16, 8]);
  layer.dispose();
});

test("merge folds B·A·scaling into the base weight, unmerge restores it, forward agrees in both states", () => {
  manualSeed(2);
  const base = new Linear(6, 4, { dtype: "float64" });
  const before = base.weight.clone();
  const layer = new LoRALinear(base, { r: 2, alpha: 4, rslora: true });
  noGrad(() => layer.lora_B.weight.copy_(randn([4, 2], { dtype: "float64" })));
  const x = randn([3, 6], { dtype: "float64" });
  const adapted = layer.forward(x);
  const expectedWeight = tidy(() => before.add(layer.lora_B.weight.matmul(layer.lora_A.weight).mul(4 / Math.sqrt(2))));
  layer.merge();
  assert.ok(layer.merged);
  assert.ok(maxAbsDiff(base.weight, expectedWeight) < 1e-14, "W + scaling * B A");
  assert.ok(maxAbsDiff(layer.forward(x), adapted) < 1e-12, "the merged layer gives the adapter's output");
  layer.merge(); // twice is once
  assert.ok(maxAbsDiff(base.weight, expectedWeight) < 1e-14);
  layer.unmerge();
  assert.ok(!layer.merged);
  assert.ok(maxAbsDiff(base.weight, before) < 1e-14, "unmerge restores the base weight");
  assert.ok(maxAbsDiff(layer.forward(x), adapted) < 1e-12);
  layer.dispose();
});

test("a bf16 base gets float32 adapters (PEFT's autocast_adapter_dtype); the output keeps the base dtype", () => {
  manualSeed(3);
  const base = new Linear(8, 4, { dtype: "bfloat16" });
  const layer = new LoRALinear(base, { r: 2, alpha: 2 });
  assert.equal(layer.lora_A.weight.dtype, "float32");
  noGrad(() => layer.lora_B.weight.normal_(0, 0.5));
  const x = randn([2, 8]).to("bfloat16");
  const y = layer.forward(x);
  assert.equal(y.dtype, "bfloat16");
  const reference = tidy(() => base.forward(x).to("float32").add(layer.lora_B.forward(layer.lora_A.forward(x.to("float32")))));
  assert.ok(maxAbsDiff(y, reference) < 0.05, "bf16 rounding only");
  layer.dispose();
});

test("mergeAdapters refuses a base weight tied to another module; removeAdapters puts the Linear back", () => {
  // adaptComponents(): a model says where its components are; {} leaves everything to "head".
  class Tied extends Module {
    a = new Linear(4, 4, { bias: false });
    b = new Linear(4, 4, { bias: false });
    constructor() {
      super();
      this.b.weight.dispose();
      this.b.weight = this.a.weight;
    }
    adaptComponents() {
      return {};
    }
  }
  const model = new Tied();
  adaptModel(model as Module, { head: { mode: "lora", r: 2, alpha: 2, targetModules: ["b"] } });
  assert.throws(() => mergeAdapters(model), /cannot merge into a tied weight: b \(shares its weight with a\.weight\)/);
  const plain = new (class extends Module {
    fc = new Linear(3, 2);
    adaptComponents() {
      return {};
    }
  })();
  adaptModel(plain, { head: { mode: "lora", r: 1, alpha: 1, targetModules: "all-linear" } });
  const layer = loraLayers(plain)[0][1];
  manualSeed(4);
  noGrad(() => layer.lora_B.weight.normal_());
  const x = randn([2, 3]);
  const adapted = layer.forward(x);
  assert.deepEqual(removeAdapters(plain, { merge: true }), ["fc"]);
  assert.ok(plain.fc instanceof Linear && !(plain.fc instanceof LoRALinear));
  assert.ok(maxAbsDiff(plain.fc.forward(x), adapted) < 1e-6, "merge_and_unload keeps the adapter's output");
  model.dispose();
  plain.dispose();
});

// ---- matching rules ----

test("target_modules follow PEFT: names match a path or its dotted suffix, a string must match the whole path", () => {
  assert.ok(matchesTarget("model.language_model.layers.0.self_attn.q_proj", ["q_proj"]));
  assert.ok(matchesTarget("q_proj", ["q_proj"]));
  assert.ok(matchesTarget("a.self_attn.q_proj", ["self_attn.q_proj"]));
  assert.ok(!matchesTarget("model.layers.0.self_attn.xq_proj", ["q_proj"]));
  assert.ok(matchesTarget("a.layers.1.mlp.up_proj", ".*layers\\.1\\..*(up|down)_proj"));
  assert.ok(!matchesTarget("a.layers.1.mlp.up_proj", "up_proj"), "a regex is a full match, not a search");
  assert.ok(matchesTarget("a.b.q_proj", ".*\\.(?P<name>q|v)_proj"), "Python's named groups are understood");
  const config = { target_modules: ["q_proj", "v_proj"], exclude_modules: null, modules_to_save: null, layers_to_transform: [1], layers_pattern: null };
  assert.ok(peftSelects(config, "model.layers.1.self_attn.q_proj"));
  assert.ok(!peftSelects(config, "model.layers.0.self_attn.q_proj"), "layers_to_transform");
  assert.ok(peftSelects({ ...config, layers_to_transform: 0, layers_pattern: "layers" }, "model.language_model.layers.0.self_attn.v_proj"));
  assert.ok(!peftSelects({ ...config, layers_to_transform: null, exclude_modules: ["layers.1.self_attn.q_proj"] }, "model.layers.1.self_attn.q_proj"));
  assert.ok(!peftSelects({ ...config, layers_to_transform: null, modules_to_save: ["self_attn"] }, "model.layers.1.self_attn.q_proj"), "never inside modules_to_save");
  assert.ok(peftSelects({ ...config, target_modules: "all-linear" }, "model.layers.0.mlp.up_proj", ["lm_head"]));
  assert.ok(!peftSelects({ ...config, target_modules: "all-linear" }, "lm_head", ["lm_head"]), "all-linear leaves out the LM head");
});

test("componentPrefixes reads the Hugging Face layout of LLaVA, causal LMs, CLIP and SigLIP", async () => {
  const expected: [string, object][] = [
    ["llava-layer-int", { vision: ["model.vision_tower"], projector: ["model.multi_modal_projector"], language: ["model.language_model", "lm_head"] }],
    ["llama-gqa-untied", { vision: [], projector: [], language: ["model", "lm_head"] }],
    ["clip", { vision: ["vision_model", "visual_projection"], projector: [], language: ["text_model", "text_projection"] }],
    ["clip-vision", { vision: ["vision_model"], projector: [], language: [] }],
    ["siglip", { vision: ["vision_model"], projector: [], language: ["text_model"] }],
  ];
  for (const [name, prefixes] of expected) {
    if (!present(fixture(name))) continue;
    const model = await load(fixture(name));
    assert.deepEqual(componentPrefixes(model), prefixes, name);
    model.dispose();
  }
  const llava = await load(LLAVA);
  assert.deepEqual(componentPrefixes((llava as unknown as { model: Module }).model), { vision: ["vision_tower"], projector: ["multi_modal_projector"], language: ["language_model"] }, "a bare LlavaModel");
  const decoder = (llava as unknown as { model: { language_model: Module } }).model.language_model;
  assert.deepEqual(componentPrefixes(decoder), { vision: [], projector: [], language: [""] }, "a bare decoder is all language");
  assert.throws(() => componentPrefixes(new (class Odd extends Module { thing = new Linear(2, 2); })()), /cannot tell where .* of Odd .*its submodules: thing/);
  llava.dispose();
});

// ---- component scoping ----

test("a language plan wraps only the language model's layers, never the vision tower's q_proj, and reports like PEFT", async () => {
  const model = await load(LLAVA);
  const lines: string[] = [];
  const result = adaptModel(model, { language: { mode: "lora", r: 4, alpha: 8, targetModules: ["q_proj", "v_proj"] } }, (l) => lines.push(l));
  const wrapped = loraLayers(model).map(([p]) => p);
  assert.deepEqual(wrapped, [0, 1].flatMap((i) => [`model.language_model.layers.${i}.self_attn.q_proj`, `model.language_model.layers.${i}.self_attn.v_proj`]));
  assert.deepEqual(result.wrapped.language, wrapped);
  assert.ok(model.getSubmodule("model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj") instanceof Linear, "the tower's q_proj stays a plain Linear");
  // r (in + out) per layer: q 32->32, v 32->16.
  const loraValues = 2 * (4 * (32 + 32) + 4 * (32 + 16));
  assert.equal(result.trainable.reduce((n, [, p]) => n + p.numel(), 0), loraValues);
  assert.ok(result.trainable.every(([name]) => /\.lora_[AB]\.weight$/.test(name)));
  const all = model.numParameters();
  assert.equal(result.trainableLine, `trainable params: ${loraValues} || all params: ${all.toLocaleString("en-US")} || trainable%: ${((100 * loraValues) / all).toFixed(4)}`);
  assert.deepEqual(lines, [
    "vision: frozen",
    "projector: frozen",
    "language: LoRA r=4 alpha=8 (scaling 2) on 4 Linear layer(s): model.language_model.layers.0.self_attn.q_proj, model.language_model.layers.0.self_attn.v_proj, model.language_model.layers.1.self_attn.q_proj, ... (+1 more)",
    result.trainableLine,
  ]);
  assert.equal(result.report, lines.join("\n"));
  model.dispose();
});

test("regex targets match inside their component (relative or full path, ours or PEFT's spelling); all-linear; errors", async () => {
  const model = await load(LLAVA);
  adaptModel(model, {
    vision: { mode: "lora", r: 2, alpha: 2, targetModules: "model\\.vision_tower\\.encoder\\.layers\\.0\\.self_attn\\.(q|k)_proj" },
    projector: { mode: "lora", r: 2, alpha: 2, targetModules: "all-linear" },
    language: { mode: "lora", r: 2, alpha: 2, targetModules: "layers\\.1\\.mlp\\.(up|down)_proj" },
  });
  assert.deepEqual(loraLayers(model).map(([p]) => p), [
    "model.vision_tower.vision_model.encoder.layers.0.self_attn.k_proj",
    "model.vision_tower.vision_model.encoder.layers.0.self_attn.q_proj",
    "model.multi_modal_projector.linear_1",
    "model.multi_modal_projector.linear_2",
    "model.language_model.layers.1.mlp.up_proj",
    "model.language_model.layers.1.mlp.down_proj",
  ]);
  // all-linear on the language model leaves out lm_head, as PEFT does.
  const again = await load(LLAVA);
  const { wrapped } = adaptModel(again, { language: { mode: "lora", targetModules: "all-linear" } });
  assert.equal(wrapped.language.length, 2 * 7);
  assert.ok(!wrapped.language.includes("lm_head"));
  assert.throws(() => adaptModel(again, { vision: { mode: "lora", targetModules: ["gate_proj"] } }), /vision\.targetModules \["gate_proj"\] match no Linear layer under model\.vision_tower; Linear layer names there: fc1, fc2, k_proj, out_proj, q_proj, v_proj/);
  assert.throws(() => adaptModel(again, { language: { mode: "lora", targetModules: ["mlp"] } }), /selects 2 module\(s\) that are not Linear layers: model\.language_model\.layers\.0\.mlp \(LlamaMLP\)/);
  assert.throws(() => adaptModel(again, { head: { mode: "lora" }, decoder: { mode: "full" } } as never), /unknown component 'decoder'/);
  assert.throws(() => adaptModel(again, { language: { mode: "lora", target_modules: ["q_proj"] } } as never), /language\.target_modules is not an option/);
  assert.throws(() => adaptModel(again, { language: { mode: "partial" } } as never), /language\.mode must be "frozen", "lora" or "full"/);
  assert.throws(() => adaptModel(again, { language: { mode: "lora", targetModules: "(" } }), /not a valid regular expression/);
  assert.throws(() => adaptModel(again, { language: { mode: "lora", r: 0 } }), /adaptModel: language\.r must be a positive integer, got 0/);
  assert.throws(() => adaptModel(again, { vision: { mode: "lora", dropout: 1 } }), /vision\.dropout must be in \[0, 1\), got 1/);
  const llama = await load(LLAMA);
  assert.throws(() => adaptModel(llama, { projector: { mode: "full" } }), /LlamaForCausalLM has no projector component to train in full; it has: language/);
  const lines: string[] = [];
  adaptModel(llama, { head: { mode: "full" } }, (l) => lines.push(l));
  assert.match(lines[1], /^head: LlamaForCausalLM has no parameters outside/);
  model.dispose();
  again.dispose();
  llama.dispose();
});

test("gradients reach only what is trainable: LoRA weights get them, every frozen weight's grad stays null", async () => {
  const model = await load(LLAVA);
  adaptModel(model, { vision: { mode: "lora", r: 2, alpha: 4, targetModules: ["v_proj"] }, projector: { mode: "full" }, language: { mode: "lora", r: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "o_proj"] } });
  randomizeAdapter(model, 5);
  const { inputs, dispose: free } = goldenInputs(LLAVA, LLAVA_LABELS);
  model.train();
  tidy(() => model.forward(inputs).loss!.backward());
  let withGrad = 0;
  for (const [name, p] of model.namedParameters()) {
    const g = p.grad;
    const trainable = /\.lora_[AB]\.weight$/.test(name) || name.startsWith("model.multi_modal_projector.");
    // The last vision layer is after the feature layer (-2): its adapter gets no gradient, as in transformers.
    const reachesLoss = !name.startsWith("model.vision_tower.vision_model.encoder.layers.2.");
    if (trainable && reachesLoss) {
      assert.ok(g !== null && tidy(() => g.abs().sum().item()) > 0, `${name} gets a gradient`);
      withGrad++;
    } else {
      assert.equal(g, null, `${name} is frozen (or unused) and gets no gradient`);
    }
    g?.dispose();
  }
  assert.equal(withGrad, 2 * 2 + 4 + 2 * 6);
  free();
  model.dispose();

  const full = await load(LLAVA);
  const { trainable } = adaptModel(full, { vision: { mode: "full" } });
  for (const [name, p] of full.namedParameters()) assert.equal(p.requiresGrad, name.startsWith("model.vision_tower."), name);
  assert.equal(trainable.length, full.namedParameters().filter(([n]) => n.startsWith("model.vision_tower.")).length);
  full.dispose();
});

// ---- our files ----

test("saveAdapter writes PEFT's files: names without vision_model, patterns for mixed ranks/alphas/rsLoRA, modules_to_save; loadAdapter gives identical logits", async () => {
  const model = await load(LLAVA);
  adaptModel(model, {
    vision: { mode: "lora", r: 2, alpha: 4, targetModules: ["q_proj", "k_proj"] },
    projector: { mode: "full" },
    language: { mode: "lora", r: 4, alpha: 8, rslora: true, targetModules: ["q_proj", "v_proj"] },
  });
  randomizeAdapter(model, 6);
  model.eval();
  const { inputs, dispose: free } = goldenInputs(LLAVA, LLAVA_INPUTS);
  const expected = logitsOf(model, inputs);
  const dir = join(tmp(), "adapter");
  saveAdapter(model, dir, "fixtures/llava-layer-int");
  const config = readJson(join(dir, "adapter_config.json")) as unknown as PeftLoraConfig;
  assert.equal(config.peft_type, "LORA");
  assert.equal(config.base_model_name_or_path, "fixtures/llava-layer-int");
  assert.equal(config.task_type, "CAUSAL_LM");
  assert.deepEqual([config.r, config.lora_alpha, config.use_rslora], [2, 4, false]);
  assert.deepEqual(config.modules_to_save, ["model.multi_modal_projector"]);
  // The vision tower has q_proj too, so a list of names would pick up more: a regex names each layer family.
  assert.equal(config.target_modules, [
    "model\\.language_model\\.layers\\.\\d+\\.self_attn\\.q_proj", "model\\.language_model\\.layers\\.\\d+\\.self_attn\\.v_proj",
    "model\\.vision_tower\\.encoder\\.layers\\.\\d+\\.self_attn\\.k_proj", "model\\.vision_tower\\.encoder\\.layers\\.\\d+\\.self_attn\\.q_proj",
  ].join("|"));
  // The language layers' r 4 and rsLoRA scaling 8/sqrt(4) = 4 become r 4, alpha 16 under use_rslora false.
  assert.equal(config.rank_pattern["model\\.language_model\\.layers\\.0\\.self_attn\\.q_proj"], 4);
  assert.equal(config.alpha_pattern["model\\.language_model\\.layers\\.1\\.self_attn\\.v_proj"], 16);
  assert.equal(Object.keys(config.rank_pattern).length, 4);
  assert.deepEqual(Object.keys(readJson(join(dir, "adapter_config.json"))), Object.keys(config).sort(), "keys sorted as PEFT writes them");
  const saved = readSafetensors(join(dir, "adapter_model.safetensors"));
  const keys = [...saved.keys()].sort();
  assert.ok(keys.includes("base_model.model.model.vision_tower.encoder.layers.0.self_attn.q_proj.lora_A.weight"), "transformers 5 names the tower without vision_model");
  assert.ok(keys.includes("base_model.model.model.language_model.layers.1.self_attn.v_proj.lora_B.weight"));
  assert.ok(keys.includes("base_model.model.model.multi_modal_projector.linear_2.bias"));
  assert.equal(keys.length, 2 * (6 + 4) + 4);
  dispose([...saved.values()]);

  const fresh = await load(LLAVA);
  const before = liveTensorCount();
  const loaded = await loadAdapter(fresh, dir);
  assert.equal(liveTensorCount() - before, 2 * 10, "only the new lora_A / lora_B stay: the file's tensors are freed");
  assert.deepEqual(loaded.wrapped, loraLayers(model).map(([p]) => p), "in tree order");
  assert.deepEqual(loaded.modulesToSave, ["model.multi_modal_projector"]);
  assert.ok(loraLayers(fresh).every(([, l]) => !l.lora_A.weight.requiresGrad && !l.training), "loaded adapters are frozen and follow the model's eval mode");
  const actual = logitsOf(fresh, inputs);
  assert.equal(maxAbsDiff(actual, expected), 0, "same weights, same logits");
  mergeAdapters(fresh);
  assertClose(logitsOf(fresh, inputs), expected, 2e-5, "merged");
  unmergeAdapters(fresh);
  assertClose(logitsOf(fresh, inputs), expected, 2e-5, "unmerged");

  // Saved again from the loaded model: the same files.
  const dir2 = join(tmp(), "again");
  saveAdapter(fresh, dir2);
  assert.deepEqual(readJson(join(dir2, "adapter_config.json")), readJson(join(dir, "adapter_config.json")), "config round trip (base path remembered)");
  const [a, b] = [readSafetensors(join(dir, "adapter_model.safetensors")), readSafetensors(join(dir2, "adapter_model.safetensors"))];
  for (const [key, t] of a) assert.ok(t.equal(b.get(key)!), key);
  dispose([...a.values(), ...b.values()]);

  // adaptModel on a model with loaded adapters trains them further instead of replacing them.
  const { wrapped } = adaptModel(fresh, { language: { mode: "lora", r: 4, alpha: 8, rslora: true, targetModules: ["q_proj", "v_proj"] } });
  assert.equal(wrapped.language.length, 4);
  assertClose(logitsOf(fresh, inputs), expected, 2e-5, "the kept adapters");
  assert.ok(loraLayers(fresh).filter(([p]) => p.startsWith("model.language_model.")).every(([, l]) => l.lora_A.weight.requiresGrad));
  free();
  model.dispose();
  fresh.dispose();
});

test("a causal LM's adapter lists its layer names plainly; the legacy LLaVA layout (language_model.model.*) loads", async () => {
  const llama = await load(LLAMA);
  adaptModel(llama, { language: { mode: "lora", r: 2, alpha: 2, dropout: 0.1, targetModules: ["q_proj", "down_proj"] } });
  const out = join(tmp(), "llama");
  saveAdapter(llama, out);
  const config = readJson(join(out, "adapter_config.json"));
  assert.deepEqual(config.target_modules, ["down_proj", "q_proj"]);
  assert.equal(config.lora_dropout, 0.1);
  assert.equal(config.base_model_name_or_path, null);
  const freshLlama = await load(LLAMA);
  assert.deepEqual((await loadAdapter(freshLlama, out)).wrapped, loraLayers(llama).map(([p]) => p));
  assert.equal(loraLayers(freshLlama)[0][1].dropout, 0.1);
  llama.dispose();
  freshLlama.dispose();

  // PEFT on transformers 4 named LLaVA's layers language_model.model.* and vision_tower.vision_model.*.
  const model = await load(LLAVA);
  adaptModel(model, { vision: { mode: "lora", r: 2, alpha: 4, targetModules: ["q_proj"] }, language: { mode: "lora", r: 2, alpha: 4, targetModules: ["v_proj"] } });
  randomizeAdapter(model, 7);
  model.eval();
  const ours = join(tmp(), "ours");
  saveAdapter(model, ours);
  const legacy = tmp();
  const tensors = readSafetensors(join(ours, "adapter_model.safetensors"));
  const renamed = new Map([...tensors].map(([k, t]) => [
    k.replace("base_model.model.model.language_model.", "base_model.model.language_model.model.").replace("base_model.model.model.vision_tower.", "base_model.model.vision_tower.vision_model."), t,
  ]));
  writeSafetensors(join(legacy, "adapter_model.safetensors"), renamed);
  writeFileSync(join(legacy, "adapter_config.json"), JSON.stringify({ ...readJson(join(ours, "adapter_config.json")), target_modules: "language_model\\.model\\..*v_proj|vision_tower\\..*q_proj" }));
  const fresh = await load(LLAVA);
  await loadAdapter(fresh, legacy);
  const { inputs, dispose: free } = goldenInputs(LLAVA, LLAVA_INPUTS);
  assert.equal(maxAbsDiff(logitsOf(fresh, inputs), logitsOf(model, inputs)), 0);
  dispose([...tensors.values()]);
  free();
  model.dispose();
  fresh.dispose();
});

test("adapterStateDict / loadAdapterStateDict carry adapter weights through a checkpoint into the same layers", async () => {
  const plan: AdaptationPlan = { projector: { mode: "full" }, language: { mode: "lora", r: 2, alpha: 4, targetModules: ["q_proj"] } };
  const model = await load(LLAVA);
  adaptModel(model, plan);
  randomizeAdapter(model, 8);
  const state = adapterStateDict(model);
  assert.ok(state.get("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight") === loraLayers(model)[0][1].lora_A.weight, "live tensors");
  const target = await load(LLAVA);
  adaptModel(target, plan);
  const parameter = loraLayers(target)[0][1].lora_B.weight;
  loadAdapterStateDict(target, state);
  assert.equal(loraLayers(target)[0][1].lora_B.weight, parameter, "the same Parameter objects (optimizer state stays valid)");
  assert.ok(parameter.requiresGrad, "still trainable");
  for (const [key, t] of adapterStateDict(target)) assert.ok(t.equal(state.get(key)!), key);
  const bare = await load(LLAVA);
  assert.throws(() => loadAdapterStateDict(bare, state), /has no LoRA layer to load into; load the adapter folder with loadAdapter/);
  const partial = new Map(state);
  partial.delete("base_model.model.model.language_model.layers.1.self_attn.q_proj.lora_A.weight");
  partial.delete("base_model.model.model.language_model.layers.1.self_attn.q_proj.lora_B.weight");
  assert.throws(() => loadAdapterStateDict(target, partial), /missing base_model\.model\.model\.language_model\.layers\.1\.self_attn\.q_proj\.lora_A\.weight and \.lora_B\.weight \(the model has a LoRA layer/);
  model.dispose();
  target.dispose();
  bare.dispose();
});

test("bad adapter folders: errors name the file and the key, and a failed load changes nothing", async () => {
  const model = await load(LLAVA);
  adaptModel(model, { projector: { mode: "full" }, language: { mode: "lora", r: 2, alpha: 4, targetModules: ["q_proj"] } });
  const good = join(tmp(), "good");
  saveAdapter(model, good);
  model.dispose();
  const config = readJson(join(good, "adapter_config.json"));
  const weights = readSafetensors(join(good, "adapter_model.safetensors"));
  const q0 = "base_model.model.model.language_model.layers.0.self_attn.q_proj";
  const variant = (edit: (c: Record<string, unknown>, w: Map<string, Tensor>) => void) => {
    const dir = tmp();
    const c = structuredClone(config);
    const w = new Map(weights);
    edit(c, w);
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(c));
    writeSafetensors(join(dir, "adapter_model.safetensors"), w);
    return dir;
  };
  const extra = tensor([[1, 2]]);
  const cases: [string, string, RegExp][] = [
    ["DoRA", variant((c) => (c.use_dora = true)), /adapter_config\.json: use_dora is true: DoRA .* not supported/],
    ["IA3", variant((c) => (c.peft_type = "IA3")), /adapter_config\.json: peft_type is "IA3"; vlmkit loads LoRA adapters only/],
    ["PiSSA", variant((c) => (c.init_lora_weights = "pissa_niter_4")), /init_lora_weights is "pissa_niter_4": .*convert it in PEFT/],
    ["lora bias", variant((c) => (c.lora_bias = true)), /lora_bias is true: trained LoRA biases/],
    ["bias all", variant((c) => (c.bias = "all")), /bias is "all"/],
    ["bad r", variant((c) => (c.r = "4")), /adapter_config\.json: r must be a positive integer, got "4"/],
    ["missing partner", variant((_, w) => w.delete(`${q0}.lora_B.weight`)), new RegExp(`missing ${q0.replace(/\./g, "\\.")}\\.lora_B\\.weight \\(its partner .*lora_A\\.weight is there\\)`)],
    ["missing layer", variant((_, w) => { w.delete(`${q0}.lora_A.weight`); w.delete(`${q0}.lora_B.weight`); }), /missing .*layers\.0\.self_attn\.q_proj\.lora_A\.weight and \.lora_B\.weight \(target_modules selects/],
    ["rank vs config", variant((c) => (c.r = 3)), /q_proj\.lora_A\.weight: rank 2, but .*adapter_config\.json gives model\.language_model\.layers\.0\.self_attn\.q_proj r=3/],
    ["shape", variant((_, w) => w.set(`${q0}.lora_A.weight`, randn([2, 7]))), /q_proj\.lora_A\.weight: shape \[2, 7\], but model\.language_model\.layers\.0\.self_attn\.q_proj takes 32 inputs/],
    ["unexpected", variant((_, w) => w.set("base_model.model.model.language_model.layers.0.self_attn.zz_proj.lora_A.weight", extra)), /unexpected keys \(1\): .*zz_proj\.lora_A\.weight \(no module/],
    ["not targeted", variant((c) => (c.target_modules = ["k_proj", "q_proj"]), ), /missing .*k_proj\.lora_A\.weight/],
    ["not under modules_to_save", variant((c) => (c.modules_to_save = null)), /unexpected keys \(4\): .*multi_modal_projector\.linear_1\.weight: neither a LoRA weight nor under modules_to_save null/],
    ["embedding LoRA", variant((_, w) => w.set("base_model.model.model.language_model.embed_tokens.lora_embedding_A", extra)), /lora_embedding_A: LoRA on an embedding layer is not supported/],
    ["DoRA tensor", variant((_, w) => w.set(`${q0}.lora_magnitude_vector`, extra)), /lora_magnitude_vector: a DoRA magnitude vector/],
    ["not Linear", variant((_, w) => { w.set("base_model.model.model.language_model.layers.0.mlp.lora_A.weight", extra); w.set("base_model.model.model.language_model.layers.0.mlp.lora_B.weight", extra); }), /layers\.0\.mlp is a LlamaMLP; LoRA is supported on Linear layers only/],
  ];
  for (const [what, dir, message] of cases) {
    const fresh = await load(LLAVA);
    const projector = fresh.getParameter("model.multi_modal_projector.linear_1.weight").clone();
    await assert.rejects(loadAdapter(fresh, dir), message, what);
    assert.equal(loraLayers(fresh).length, 0, `${what}: no LoRA layer was added`);
    assert.ok(fresh.getParameter("model.multi_modal_projector.linear_1.weight").equal(projector), `${what}: no weight was touched`);
    fresh.dispose();
    rmSync(dir, { recursive: true });
  }
  const fresh = await load(LLAVA);
  const empty = tmp();
  await assert.rejects(loadAdapter(fresh, empty), /adapter_config\.json is missing: a PEFT adapter folder holds adapter_config\.json and adapter_model\.safetensors/);
  writeFileSync(join(empty, "adapter_config.json"), "{ not json");
  await assert.rejects(loadAdapter(fresh, empty), /adapter_config\.json is not valid JSON/);
  writeFileSync(join(empty, "adapter_config.json"), JSON.stringify(config));
  writeFileSync(join(empty, "adapter_model.bin"), "pickle");
  await assert.rejects(loadAdapter(fresh, empty), /adapter_model\.safetensors is missing: the folder has adapter_model\.bin \(pickle\), which vlmkit never reads/);
  await assert.rejects(loadAdapter(fresh, join(empty, "nowhere")), /adapter folder .*nowhere does not exist/);
  assert.throws(() => parseAdapterConfig({ peft_type: "LORA", r: 4, target_modules: 3 }, "cfg.json"), /cfg\.json: target_modules must be a list of module names or a regex string, got 3/);
  assert.throws(() => saveAdapter(fresh, join(empty, "x")), /has no LoRA layers and no component trained in full; run adaptModel first/);
  dispose([...weights.values(), extra]);
  fresh.dispose();
});

// ---- parity with adapters made by Python PEFT ----

interface PeftFixture {
  name: string;
  /** The plan that puts LoRA on exactly PEFT's layers (null when PEFT's counts differ by construction). */
  plan: AdaptationPlan | null;
}
const PEFT_FIXTURES: PeftFixture[] = [
  { name: "lora-llava-qv", plan: { vision: { mode: "lora", r: 4, alpha: 8, targetModules: ["q_proj", "v_proj"] }, language: { mode: "lora", r: 4, alpha: 8, targetModules: ["q_proj", "v_proj"] } } },
  // modules_to_save: PEFT keeps the original projector beside its trained copy, so its "all params" counts both.
  { name: "lora-llava-lang", plan: null },
  { name: "lora-llama-rslora", plan: { language: { mode: "lora", r: 4, alpha: 8, rslora: true, targetModules: ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"] } } },
];

for (const { name, plan } of PEFT_FIXTURES) {
  const dir = fixture(name);
  const skip = !present(join(dir, "adapter_model.safetensors"), join(dir, "goldens.safetensors")) && `fixtures/${name} is absent: run python3 tools/reference/fixtures_lora.py fixtures`;
  test(`${name}: a PEFT adapter loads with PEFT's logits, merged logits, gradients and layers; saved again it is the same file`, { skip }, async () => {
    const meta = readJson(join(dir, "goldens.json")) as { base: string; inputs: Record<string, string>; labels: string; lora_modules: string[]; saved_keys: string[]; keys_without_grad: string[]; trainable_params: number; all_params: number };
    const goldens = readSafetensors(join(dir, "goldens.safetensors"));
    const baseDir = fixture(meta.base);
    const { inputs, dispose: free } = goldenInputs(baseDir, { ...meta.inputs, labels: meta.labels });
    const model = (await load(baseDir)) as ForwardModel;
    const loaded = await loadAdapter(model, dir);
    const naming = peftNaming(model);
    assert.deepEqual(loaded.wrapped.map((p) => naming.toPeft(p)).sort(), [...meta.lora_modules].sort(), "LoRA on exactly PEFT's layers");

    const { labels, ...forwardInputs } = inputs;
    assertClose(logitsOf(model, forwardInputs), goldens.get("logits")!, 1e-4, "logits with the adapter");
    // Gradients of every adapter tensor (eval mode, as the goldens were taken).
    model.freeze();
    for (const [, layer] of loraLayers(model)) for (const p of layer.loraParameters()) p.requiresGrad = true;
    for (const path of loaded.modulesToSave) model.getSubmodule(path).unfreeze();
    tidy(() => model.forward({ ...forwardInputs, labels }).loss!.backward());
    const state = adapterStateDict(model);
    assert.deepEqual([...state.keys()].sort(), [...meta.saved_keys].sort(), "our key names are PEFT's");
    for (const [key, t] of state) {
      const golden = goldens.get(`grad.${key}`);
      const grad = t.grad;
      if (!golden) {
        assert.ok(meta.keys_without_grad.includes(key), `${key}: no golden gradient`);
        assert.ok(grad === null || tidy(() => grad.abs().max().item()) === 0, `${key}: PEFT has no gradient, ours is nonzero`);
        grad?.dispose();
        continue;
      }
      assert.ok(grad, `${key}: no gradient`);
      assertRelativeClose(grad, golden, 1e-4, `grad of ${key}`);
      grad.dispose();
    }
    model.zeroGrad();
    mergeAdapters(model);
    assertClose(logitsOf(model, forwardInputs), goldens.get("merged_logits")!, 1e-4, "merged logits");
    unmergeAdapters(model);

    // Saved by us: PEFT's keys, and the tensors it gave us.
    const out = join(tmp(), name);
    saveAdapter(model, out);
    const [theirs, ours] = [readSafetensors(join(dir, "adapter_model.safetensors")), readSafetensors(join(out, "adapter_model.safetensors"))];
    assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
    for (const [key, t] of theirs) assert.ok(t.equal(ours.get(key)!), key);
    const theirConfig = readJson(join(dir, "adapter_config.json"));
    const ourConfig = readJson(join(out, "adapter_config.json"));
    if (Array.isArray(theirConfig.target_modules)) assert.deepEqual([...(ourConfig.target_modules as string[])].sort(), [...theirConfig.target_modules].sort(), "target_modules");
    dispose([...theirs.values(), ...ours.values(), ...goldens.values()]);
    model.dispose();

    if (plan) {
      // Our plan puts LoRA on the same layers; the parameter counts are PEFT's print_trainable_parameters.
      const planned = await load(baseDir);
      const { trainableLine } = adaptModel(planned, plan);
      assert.deepEqual(loraLayers(planned).map(([p]) => naming.toPeft(p)).sort(), [...meta.lora_modules].sort());
      const percent = ((100 * meta.trainable_params) / meta.all_params).toFixed(4);
      assert.equal(trainableLine, `trainable params: ${meta.trainable_params.toLocaleString("en-US")} || all params: ${meta.all_params.toLocaleString("en-US")} || trainable%: ${percent}`);
      planned.dispose();
    }
    free();
  });
}

test("training steps through LoRA layers keep the live tensor count flat", async () => {
  const model = await load(LLAMA);
  adaptModel(model, { language: { mode: "lora", r: 2, alpha: 4, dropout: 0.1, targetModules: ["q_proj", "v_proj", "down_proj"] } });
  model.train();
  const { inputs, dispose: free } = goldenInputs(LLAMA, { ...LLAMA_INPUTS, labels: "forward.labels" });
  const step = () => {
    tidy(() => model.forward(inputs).loss!.backward());
    model.zeroGrad();
  };
  step();
  const before = liveTensorCount();
  for (let i = 0; i < 3; i++) step();
  assert.equal(liveTensorCount(), before);
  mergeAdapters(model);
  unmergeAdapters(model);
  assert.equal(liveTensorCount(), before, "merge and unmerge free their temporaries");
  free();
  model.dispose();
});

test("repeated checkpoint loads into the same layers keep memory flat", async () => {
  const model = await load(LLAMA);
  adaptModel(model, { language: { mode: "lora", r: 2, alpha: 2, targetModules: ["v_proj"] } });
  randomizeAdapter(model, 9);
  const dir = join(tmp(), "flat");
  mkdirSync(dir);
  saveAdapter(model, dir);
  model.dispose();
  const target = await load(LLAMA);
  await loadAdapter(target, dir);
  const state = adapterStateDict(target);
  const before = liveTensorCount();
  for (let i = 0; i < 3; i++) loadAdapterStateDict(target, state);
  assert.equal(liveTensorCount(), before);
  assert.ok(readFileSync(join(dir, "adapter_config.json"), "utf8").endsWith("}\n"));
  target.dispose();
});
