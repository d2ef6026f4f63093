// CLIP parity with transformers (fixtures/clip, fixtures/clip-vision) and checks that need no fixture.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { Tensor, tidy, noGrad, manualSeed, randn, randint, tensor, liveTensorCount } from "../../src/index.js";
import {
  CLIPModel, CLIPVisionModel, CLIPTextModel, CLIPAttention, parseCLIPConfig, parseCLIPVisionConfig, parseCLIPTextConfig,
  clipVisionKey, clipTextKey, clipModelKey, causalPaddingMask,
} from "../../src/models/clip/index.js";
import { assertClose, fixturePath, loadCheckpoint, missingFixture, readGoldens, readJson, TOLERANCE } from "./vision_helpers.js";

const TINY_VISION = { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, image_size: 12, patch_size: 4, hidden_act: "gelu" };
const TINY_TEXT = { vocab_size: 50, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 10, eos_token_id: 49 };

test("clip: CLIPModel matches transformers (hidden states, pooled outputs, embeddings, logits)", { skip: missingFixture("clip") }, () => {
  const folder = fixturePath("clip");
  const model = new CLIPModel(parseCLIPConfig(readJson(join(folder, "config.json")))).eval();
  loadCheckpoint(model, folder, clipModelKey);
  const goldens = readGoldens("clip");
  const before = liveTensorCount();
  noGrad(() =>
    tidy(() => {
      const inputs = {
        input_ids: goldens.get("inputs.input_ids"),
        attention_mask: goldens.get("inputs.attention_mask"),
        pixel_values: goldens.get("inputs.pixel_values"),
        output_hidden_states: true,
      };
      const out = model.forward(inputs);
      for (const tower of ["vision", "text"] as const) {
        const towerOut = tower === "vision" ? out.vision_model_output : out.text_model_output;
        const count = goldens.meta[`${tower}_hidden_states`] as number;
        assert.equal(towerOut.hidden_states!.length, count, `${tower}: number of hidden states`);
        towerOut.hidden_states!.forEach((h, i) => assertClose(h, goldens.get(`${tower}.hidden_states.${i}`), TOLERANCE.hidden, `${tower}.hidden_states.${i}`));
        assertClose(towerOut.last_hidden_state, goldens.get(`${tower}.last_hidden_state`), TOLERANCE.hidden, `${tower}.last_hidden_state`);
        assertClose(towerOut.pooler_output!, goldens.get(`${tower}.pooler_output`), TOLERANCE.hidden, `${tower}.pooler_output`);
      }
      for (const key of ["image_embeds", "text_embeds", "logits_per_image", "logits_per_text"] as const) {
        assertClose(out[key], goldens.get(key), TOLERANCE.hidden, key);
      }
      // Projected features are the unnormalised embeddings.
      const features = model.getImageFeatures(inputs.pixel_values);
      assertClose(features.div(features.norm(2, -1, true)), goldens.get("image_embeds"), TOLERANCE.hidden, "getImageFeatures");
    }),
  );
  assert.equal(liveTensorCount(), before, "forward leaves no tensors behind");
  goldens.dispose();
  model.dispose();
});

test("clip: text pooling follows transformers' eos rule and the legacy eos_token_id == 2 rule", { skip: missingFixture("clip") }, () => {
  const folder = fixturePath("clip");
  const model = new CLIPModel(parseCLIPConfig(readJson(join(folder, "config.json")))).eval();
  loadCheckpoint(model, folder, clipModelKey);
  const goldens = readGoldens("clip");
  noGrad(() =>
    tidy(() => {
      const inputs = { input_ids: goldens.get("legacy.input_ids"), attention_mask: goldens.get("inputs.attention_mask") };
      model.text_model.eosTokenId = 2;
      assertClose(model.text_model.forward(inputs).pooler_output!, goldens.get("legacy.pooler_output"), TOLERANCE.hidden, "legacy (argmax) pooling");
      model.text_model.eosTokenId = model.config.text_config.eos_token_id;
      assertClose(model.text_model.forward(inputs).pooler_output!, goldens.get("eos_rule.pooler_output"), TOLERANCE.hidden, "first-eos pooling");
    }),
  );
  goldens.dispose();
  model.dispose();
});

test("clip-vision: CLIPVisionModel (gelu) matches transformers, square and interpolated non-square input", { skip: missingFixture("clip-vision") }, () => {
  const folder = fixturePath("clip-vision");
  const model = new CLIPVisionModel(parseCLIPVisionConfig(readJson(join(folder, "config.json")))).eval();
  // transformers 5 saves this model without the vision_model. prefix; clipVisionKey restores it.
  loadCheckpoint(model, folder, clipVisionKey);
  const goldens = readGoldens("clip-vision");
  noGrad(() =>
    tidy(() => {
      for (const [prefix, pixels, interpolate] of [["", "inputs.pixel_values", false], ["wide.", "inputs.wide_pixel_values", true]] as const) {
        const out = model.forward({ pixel_values: goldens.get(pixels), interpolate_pos_encoding: interpolate, output_hidden_states: true });
        assert.equal(out.hidden_states!.length, goldens.meta.hidden_states);
        out.hidden_states!.forEach((h, i) => assertClose(h, goldens.get(`${prefix}hidden_states.${i}`), TOLERANCE.hidden, `${prefix}hidden_states.${i}`));
        assertClose(out.last_hidden_state, goldens.get(`${prefix}last_hidden_state`), TOLERANCE.hidden, `${prefix}last_hidden_state`);
        assertClose(out.pooler_output!, goldens.get(`${prefix}pooler_output`), TOLERANCE.hidden, `${prefix}pooler_output`);
      }
      assert.throws(() => model.forward({ pixel_values: goldens.get("inputs.wide_pixel_values") }), /doesn't match the model \(30\*30\).*interpolate_pos_encoding/);
    }),
  );
  goldens.dispose();
  model.dispose();
});

test("clip-vision: the hub layout (vision_model.*) and transformers 5's (no prefix) load the same weights", { skip: missingFixture("clip-vision") }, () => {
  const folder = fixturePath("clip-vision");
  const config = parseCLIPVisionConfig(readJson(join(folder, "config.json")));
  const flat = new CLIPVisionModel(config);
  loadCheckpoint(flat, folder, clipVisionKey);
  const prefixed = new CLIPVisionModel(config);
  // The same file read as a hub checkpoint: every key gets the prefix, which clipVisionKey then keeps.
  loadCheckpoint(prefixed, folder, (name) => clipVisionKey(`vision_model.${name}`));
  const a = flat.stateDict();
  const b = prefixed.stateDict();
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, t] of a) assert.ok(t.equal(b.get(name)!), name);
  assert.equal(clipVisionKey("vision_model.embeddings.position_ids"), null);
  assert.equal(clipTextKey("final_layer_norm.weight"), "text_model.final_layer_norm.weight");
  flat.dispose();
  prefixed.dispose();
});

// ---- checks without fixtures ----

test("clip: attention equals a float64 softmax(q k^T / sqrt(d)) v written out in JS", () => {
  manualSeed(3);
  const config = { hidden_size: 4, intermediate_size: 8, num_attention_heads: 2, num_hidden_layers: 1, hidden_act: "gelu", layer_norm_eps: 1e-5, attention_dropout: 0 };
  const attention = new CLIPAttention(config).double();
  const x = randn([1, 3, 4], { dtype: "float64" });
  const got = noGrad(() => attention.forward(x, null)).dataAsNumbers();
  // Reference: per head, weights from the projections read back as JS arrays.
  const rows = x.toArray() as number[][][];
  const w = (l: { weight: Tensor; bias: Tensor | null }) => ({ W: l.weight.toArray() as number[][], b: l.bias!.dataAsNumbers() });
  const project = (p: { W: number[][]; b: number[] }, v: number[]) => p.W.map((row, o) => row.reduce((s, wv, i) => s + wv * v[i], p.b[o]));
  const [q, k, v] = [attention.q_proj, attention.k_proj, attention.v_proj].map((l) => rows[0].map((r) => project(w(l), r)));
  const heads = 2, d = 2;
  const mixed = rows[0].map((_, t) => {
    const out: number[] = [];
    for (let h = 0; h < heads; h++) {
      const scores = k.map((kk) => (q[t][h * d] * kk[h * d] + q[t][h * d + 1] * kk[h * d + 1]) / Math.sqrt(d));
      const top = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - top));
      const z = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j < d; j++) out.push(e.reduce((s, ei, i) => s + (ei / z) * v[i][h * d + j], 0));
    }
    return project(w(attention.out_proj), out);
  });
  const expected = mixed.flat();
  got.forEach((g, i) => assert.ok(Math.abs(g - expected[i]) < 1e-12, `element ${i}: ${g} vs ${expected[i]}`));
  x.dispose();
  attention.dispose();
});

test("clip: the text tower is causal and ignores padding keys", () => {
  manualSeed(4);
  const model = new CLIPTextModel(parseCLIPTextConfig(TINY_TEXT)).eval();
  noGrad(() =>
    tidy(() => {
      const ids = tensor([[3, 7, 9, 49, 1, 1]], { dtype: "int64" });
      const changedLater = tensor([[3, 7, 9, 49, 5, 8]], { dtype: "int64" });
      const a = model.forward({ input_ids: ids }).last_hidden_state;
      const b = model.forward({ input_ids: changedLater }).last_hidden_state;
      assertClose(a.narrow(1, 0, 4), b.narrow(1, 0, 4), 1e-6, "positions before the change");
      assert.ok(a.narrow(1, 4, 2).sub(b.narrow(1, 4, 2)).abs().max().item() > 1e-3, "later positions see the change");
      // Pooling takes the first eos (id 49, position 3).
      const pooled = model.forward({ input_ids: ids }).pooler_output!;
      assertClose(pooled, a.select(1, 3), 0, "pooled = eos position");
      // A right-padded row gives the same states for its real tokens with and without the padding mask.
      const mask = tensor([[1, 1, 1, 1, 0, 0]], { dtype: "int64" });
      assertClose(model.forward({ input_ids: ids, attention_mask: mask }).last_hidden_state.narrow(1, 0, 4), a.narrow(1, 0, 4), 1e-6, "masking padding after the tokens");
      const m = causalPaddingMask(1, 3, tensor([[0, 1, 1]], { dtype: "int64" }), "cpu");
      assert.deepEqual(m.toArray(), [[[[true, true, true], [false, true, false], [false, true, true]]]]);
    }),
  );
  model.dispose();
});

test("clip: vision pooler is post_layernorm of the class token; interpolation at the native size is the identity", () => {
  manualSeed(5);
  const model = new CLIPVisionModel(parseCLIPVisionConfig(TINY_VISION)).eval();
  noGrad(() =>
    tidy(() => {
      const pixels = randn([2, 3, 12, 12]);
      const out = model.forward({ pixel_values: pixels, output_hidden_states: true });
      assert.deepEqual(out.last_hidden_state.shape, [2, 10, 16]);
      assert.equal(out.hidden_states!.length, 3);
      assertClose(out.pooler_output!, model.vision_model.post_layernorm.forward(out.last_hidden_state.select(1, 0)), 0, "pooler");
      const interpolated = model.forward({ pixel_values: pixels, interpolate_pos_encoding: true });
      assertClose(interpolated.last_hidden_state, out.last_hidden_state, 0, "interpolate at native size");
      const wide = model.forward({ pixel_values: randn([1, 3, 8, 16]), interpolate_pos_encoding: true });
      assert.deepEqual(wide.last_hidden_state.shape, [1, 1 + 2 * 4, 16]);
    }),
  );
  model.dispose();
});

test("clip: CLIPModel logits are scaled cosine similarities and the loss is symmetric cross entropy", () => {
  manualSeed(6);
  const config = parseCLIPConfig({ text_config: TINY_TEXT, vision_config: TINY_VISION, projection_dim: 8 });
  const model = new CLIPModel(config).eval();
  noGrad(() =>
    tidy(() => {
      const out = model.forward({ input_ids: randint(2, 49, [2, 5]), pixel_values: randn([2, 3, 12, 12]), return_loss: true });
      assertClose(out.logits_per_image, out.logits_per_text.T, 0, "transpose");
      const scale = Math.exp(2.6592);
      const cosine = out.image_embeds.matmul(out.text_embeds.T).mul(scale);
      assertClose(out.logits_per_image, cosine, 1e-4, "scaled cosine");
      assertClose(out.image_embeds.norm(2, -1), tensor([1, 1]), 1e-6, "unit image embeddings");
      const logits = out.logits_per_text.toArray() as number[][];
      const ce = (m: number[][]) => m.reduce((s, row, i) => s + Math.log(row.reduce((z, v) => z + Math.exp(v), 0)) - row[i], 0) / m.length;
      const transposed = logits[0].map((_, j) => logits.map((row) => row[j]));
      assert.ok(Math.abs(out.loss!.item() - (ce(logits) + ce(transposed)) / 2) < 1e-4);
    }),
  );
  model.dispose();
});
