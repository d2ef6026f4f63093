// LLaVA parity with transformers (fixtures/llava-layer-int, fixtures/llava-layer-list) and checks that need
// no fixture: image features scattered into the embeddings, key layouts, errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Tensor, tidy, noGrad, manualSeed, randn, tensor, cat, dispose, liveTensorCount } from "../../src/index.js";
import { SafetensorsCheckpoint } from "../../src/torch/safetensors.js";
import {
  loadPretrained, generate, LlavaForConditionalGeneration, parseLlavaConfig, llavaCheckpointKey, resolveFeatureLayers,
} from "../../src/models/index.js";
import { assertClose, assertRelativeClose, fixturePath, loadCheckpoint, missingFixture, readGoldens, readJson, TOLERANCE } from "./vision_helpers.js";

const FIXTURES = ["llava-layer-int", "llava-layer-list"];

/** Our parameter name -> transformers 5's in-memory name (its CLIP tower has no vision_model level). */
const hfParameterName = (name: string) => name.replace("model.vision_tower.vision_model.", "model.vision_tower.");

for (const name of FIXTURES) {
  test(`${name}: logits, loss, image features and every gradient match transformers`, { skip: missingFixture(name) }, async () => {
    const model = (await loadPretrained(fixturePath(name))) as LlavaForConditionalGeneration;
    const goldens = readGoldens(name);
    const out = model.forward({
      input_ids: goldens.get("inputs.input_ids"),
      attention_mask: goldens.get("inputs.attention_mask"),
      pixel_values: goldens.get("inputs.pixel_values"),
      labels: goldens.get("inputs.labels"),
    });
    assertClose(out.logits, goldens.get("logits"), TOLERANCE.hidden, "logits");
    assertClose(out.loss!, goldens.get("loss"), TOLERANCE.loss, "loss");
    assertClose(out.image_hidden_states!, goldens.get("image_hidden_states"), TOLERANCE.hidden, "image_hidden_states");
    out.loss!.backward();
    dispose(out);

    const goldenGrads = [...goldens.tensors.keys()].filter((k) => k.startsWith("grad."));
    const largest = Math.max(...goldenGrads.map((k) => tidy(() => goldens.get(k).abs().max().item())));
    const matched = new Set<string>();
    for (const [param, p] of model.namedParameters()) {
      const key = `grad.${hfParameterName(param)}`;
      const grad = p.grad;
      if (!goldens.tensors.has(key)) {
        // transformers computed no gradient (vision layers after the last feature layer, post_layernorm).
        if (grad) assert.equal(tidy(() => grad.abs().max().item()), 0, `${param}: transformers has no gradient, ours is nonzero`);
        grad?.dispose();
        continue;
      }
      assert.ok(grad, `${param}: no gradient`);
      // Gradients below 1e-4 of the largest one are compared on that scale: the key biases' gradients are
      // zero in exact arithmetic and ~1e-9 of the largest in float32, noise on both sides.
      assertRelativeClose(grad, goldens.get(key), TOLERANCE.gradRelative, `grad of ${param}`, 1e-4 * largest);
      grad.dispose();
      matched.add(key);
    }
    assert.deepEqual(goldenGrads.filter((k) => !matched.has(k)), [], "golden gradients without a parameter");
    goldens.dispose();
    model.dispose();
  });

  test(`${name}: greedy decoding (KV cache and full recomputation) gives transformers' tokens`, { skip: missingFixture(name) }, async () => {
    const model = (await loadPretrained(fixturePath(name))) as LlavaForConditionalGeneration;
    const goldens = readGoldens(name);
    const expected = goldens.meta.greedy_tokens as number[];
    const prompt = goldens.get("single.input_ids");
    const pixels = goldens.get("single.pixel_values");
    const before = liveTensorCount();
    const generated = generate(model, { input_ids: prompt, max_new_tokens: expected.length, eos_token_id: [], model_inputs: { pixel_values: pixels } });
    assert.deepEqual((generated.toArray() as number[][])[0].slice(prompt.shape[1]), expected);
    generated.dispose();
    assert.equal(liveTensorCount(), before, "generation leaves no tensors behind");
    // Without a cache: each step re-runs the whole sequence with the image.
    const tokens: number[] = [];
    noGrad(() => {
      let ids = prompt.alias();
      for (let step = 0; step < expected.length; step++) {
        const next = tidy(() => model.forward({ input_ids: ids, pixel_values: pixels }).logits.select(1, ids.shape[1] - 1).argmax(-1).item());
        tokens.push(next);
        const longer = cat([ids, tensor([[next]], { dtype: "int64" })], 1);
        ids.dispose();
        ids = longer;
      }
      ids.dispose();
    });
    assert.deepEqual(tokens, expected);
    goldens.dispose();
    model.dispose();
  });
}

test("llava: the saved (legacy) layout, transformers 5's layout and the hub's vision_model layout load identical weights", { skip: missingFixture("llava-layer-int") }, () => {
  const folder = fixturePath("llava-layer-int");
  const goldens = readGoldens("llava-layer-int");
  const config = parseLlavaConfig(readJson(join(folder, "config.json")));
  const savedKeys = new SafetensorsCheckpoint(folder).keys();
  assert.ok(savedKeys.some((k) => k.startsWith("language_model.model.")), "save_pretrained writes the legacy layout");
  // transformers 5's in-memory names, in the order named_parameters() listed them.
  const hfNames = goldens.meta.parameter_names as string[];
  const toHfName = new Map<string, string>();
  for (const saved of savedKeys) toHfName.set(saved, hfParameterName(llavaCheckpointKey(saved)!));
  assert.deepEqual([...toHfName.values()].sort(), [...hfNames].sort(), "every saved key maps onto a transformers 5 parameter");

  const layouts: Record<string, (saved: string) => string> = {
    legacy: (saved) => saved,
    transformers5: (saved) => toHfName.get(saved)!,
    hubVisionModel: (saved) => saved.replace(/^vision_tower\./, "vision_tower.vision_model."),
  };
  const states = Object.entries(layouts).map(([layout, rename]) => {
    const model = new LlavaForConditionalGeneration(config);
    const inverse = new Map(savedKeys.map((k) => [rename(k), k]));
    // Read the fixture under the layout's names, then map them back through llavaCheckpointKey.
    loadCheckpoint(model, folder, (saved) => llavaCheckpointKey(rename(saved)));
    assert.equal(inverse.size, savedKeys.length, `${layout}: names stay distinct`);
    return { layout, model };
  });
  const reference = states[0].model.stateDict();
  for (const { layout, model } of states.slice(1)) {
    for (const [key, t] of model.stateDict()) assert.ok(t.equal(reference.get(key)!), `${layout}: ${key}`);
  }
  assert.equal(llavaCheckpointKey("language_model.lm_head.weight"), "lm_head.weight");
  assert.equal(llavaCheckpointKey("model.vision_tower.vision_model.embeddings.position_ids"), null);
  for (const { model } of states) model.dispose();
  goldens.dispose();
});

// ---- checks without fixtures ----

const TINY_LLAVA = {
  model_type: "llava",
  image_token_index: 60,
  image_seq_length: 4,
  vision_config: { model_type: "clip_vision_model", hidden_size: 16, intermediate_size: 24, num_hidden_layers: 3, num_attention_heads: 2, image_size: 8, patch_size: 4 },
  text_config: { model_type: "llama", vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64 },
};

/** Two rows with four image tokens each (2x2 patch grid, class token dropped). */
function tinyInputs(): Tensor {
  return tensor([
    [1, 5, 60, 60, 60, 60, 7, 8, 9],
    [1, 60, 60, 60, 60, 11, 12, 13, 14],
  ], { dtype: "int64" });
}

test("llava: images replace the placeholder embeddings exactly as features scattered by hand", () => {
  manualSeed(11);
  const model = new LlavaForConditionalGeneration(parseLlavaConfig(TINY_LLAVA)).eval();
  noGrad(() =>
    tidy(() => {
      const ids = tinyInputs();
      const pixels = randn([2, 3, 8, 8]);
      const withImages = model.forward({ input_ids: ids, pixel_values: pixels }).logits;
      const features = model.getImageFeatures(pixels); // [2 images, 4 tokens, 16]
      assert.deepEqual(features.shape, [2, 4, 16]);
      // Row 0's image tokens sit at 2..5, row 1's at 1..4.
      const embeds = model.getInputEmbeddings().forward(ids);
      const row0 = cat([embeds.select(0, 0).narrow(0, 0, 2), features.select(0, 0), embeds.select(0, 0).narrow(0, 6, 3)], 0);
      const row1 = cat([embeds.select(0, 1).narrow(0, 0, 1), features.select(0, 1), embeds.select(0, 1).narrow(0, 5, 4)], 0);
      const byHand = model.forward({ inputs_embeds: cat([row0.unsqueeze(0), row1.unsqueeze(0)], 0) }).logits;
      assertClose(withImages, byHand, 1e-6, "scattered by hand");
      // Precomputed features give the same result as pixels.
      assertClose(model.forward({ input_ids: ids, image_features: features }).logits, withImages, 1e-6, "image_features input");
      // Embeddings given instead of ids: placeholders are found by their embedding.
      assertClose(model.forward({ inputs_embeds: embeds, pixel_values: pixels }).logits, withImages, 1e-6, "inputs_embeds input");
    }),
  );
  model.dispose();
});

test("llava: a mismatch between image tokens and image features is an error naming both counts", () => {
  manualSeed(12);
  const model = new LlavaForConditionalGeneration(parseLlavaConfig(TINY_LLAVA)).eval();
  noGrad(() =>
    tidy(() => {
      const ids = tinyInputs();
      assert.throws(() => model.forward({ input_ids: ids, pixel_values: randn([1, 3, 8, 8]) }), /tokens: 8, features: 4 \(1 image\(s\) x 4 tokens\)/);
      const oneTokenShort = tensor([[1, 60, 60, 60, 5]], { dtype: "int64" });
      assert.throws(() => model.forward({ input_ids: oneTokenShort, pixel_values: randn([1, 3, 8, 8]) }), /tokens: 3, features: 4/);
    }),
  );
  model.dispose();
});

test("llava: feature layers index the tower's hidden states; a list is concatenated; 'full' keeps the class token", () => {
  assert.deepEqual(resolveFeatureLayers(-2, 3), [2]);
  assert.deepEqual(resolveFeatureLayers([-2, -1, 0], 3), [2, 3, 0]);
  assert.throws(() => resolveFeatureLayers(-5, 3), /vision_feature_layer -5 is out of range: the vision tower has 4 hidden states/);
  manualSeed(13);
  const config = parseLlavaConfig({ ...TINY_LLAVA, vision_feature_layer: [-2, -1], vision_feature_select_strategy: "full" });
  const model = new LlavaForConditionalGeneration(config).eval();
  assert.deepEqual(model.model.multi_modal_projector.linear_1.weight.shape, [16, 32]);
  noGrad(() =>
    tidy(() => {
      const pixels = randn([1, 3, 8, 8]);
      const features = model.getImageFeatures(pixels);
      assert.deepEqual(features.shape, [1, 5, 16]);
      const hidden = model.model.vision_tower.forward({ pixel_values: pixels, output_hidden_states: true }).hidden_states!;
      const expected = model.model.multi_modal_projector.forward(cat([hidden[2], hidden[3]], -1));
      assertClose(features, expected, 1e-6, "concatenated layers");
      const defaultStrategy = model.getImageFeatures(pixels, { vision_feature_layer: [-3, -1], vision_feature_select_strategy: "default" });
      assert.deepEqual(defaultStrategy.shape, [1, 4, 16]);
    }),
  );
  // The layers after the deepest feature layer get no gradient (transformers runs them, but they do not reach the loss).
  const intModel = new LlavaForConditionalGeneration(parseLlavaConfig(TINY_LLAVA));
  const loss = intModel.forward({ input_ids: tinyInputs(), pixel_values: randn([2, 3, 8, 8]), labels: tinyInputs() }).loss!;
  loss.backward();
  loss.dispose();
  assert.equal(intModel.model.vision_tower.vision_model.encoder.layers.at(2).mlp.fc1.weight.grad, null);
  const used = intModel.model.vision_tower.vision_model.encoder.layers.at(1).mlp.fc1.weight.grad!;
  assert.ok(tidy(() => used.abs().sum().item()) > 0);
  used.dispose();
  model.dispose();
  intModel.dispose();
});

test("llava: tie_word_embeddings shares lm_head with the input embeddings", () => {
  const model = new LlavaForConditionalGeneration(parseLlavaConfig({ ...TINY_LLAVA, text_config: { ...TINY_LLAVA.text_config, tie_word_embeddings: true } }));
  assert.equal(model.lm_head.weight, model.model.language_model.embed_tokens.weight);
  assert.deepEqual(model.tiedWeights(), [["lm_head.weight", "model.language_model.embed_tokens.weight"]]);
  model.dispose();
});

test("llava: a SigLIP vision tower (no class token; 'full' keeps every patch) feeds the projector", () => {
  manualSeed(14);
  const config = parseLlavaConfig({
    ...TINY_LLAVA,
    vision_feature_select_strategy: "full",
    vision_config: { model_type: "siglip_vision_model", hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, image_size: 8, patch_size: 4, vision_use_head: false },
  });
  const model = new LlavaForConditionalGeneration(config).eval();
  assert.ok(model.namedParameters().some(([n]) => n === "model.vision_tower.vision_model.post_layernorm.weight"));
  assert.ok(!model.namedParameters().some(([n]) => n.includes(".head.")), "no pooling head when vision_use_head is false");
  noGrad(() =>
    tidy(() => {
      const pixels = randn([2, 3, 8, 8]);
      const features = model.getImageFeatures(pixels);
      assert.deepEqual(features.shape, [2, 4, 16]); // 2x2 patches, none dropped
      const hidden = model.model.vision_tower.forward({ pixel_values: pixels, output_hidden_states: true }).hidden_states!;
      assertClose(features, model.model.multi_modal_projector.forward(hidden[1]), 1e-6, "layer -2 of a 2-layer tower");
      const out = model.forward({ input_ids: tinyInputs(), pixel_values: pixels });
      assert.deepEqual(out.logits.shape, [2, 9, 64]);
    }),
  );
  model.dispose();
});

test("llava: a model loaded, run and disposed leaves no tensor behind (rotary tables included)", { skip: missingFixture("llava-layer-int") }, async () => {
  const before = liveTensorCount();
  const model = (await loadPretrained(fixturePath("llava-layer-int"))) as LlavaForConditionalGeneration;
  noGrad(() => tidy(() => void model.forward({ input_ids: tensor([[1, 2, 3, 4]], { dtype: "int64" }) })));
  assert.ok(liveTensorCount() > before);
  model.dispose();
  assert.equal(liveTensorCount(), before);
});
