// SigLIP parity with transformers (fixtures/siglip) and checks that need no fixture.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { tidy, noGrad, manualSeed, randn, randint, tensor, cat, F, liveTensorCount } from "../../src/index.js";
import {
  SiglipModel, SiglipVisionModel, SiglipTextModel, MultiheadAttention, parseSiglipConfig, parseSiglipVisionConfig, parseSiglipTextConfig,
  siglipModelKey, siglipVisionKey, siglipSigmoidLoss,
} from "../../src/models/siglip/index.js";
import { assertClose, fixturePath, loadCheckpoint, missingFixture, readGoldens, readJson, TOLERANCE } from "./vision_helpers.js";

const TINY_VISION = { hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 2, image_size: 16, patch_size: 4 };
const TINY_TEXT = { vocab_size: 50, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 8 };

function loadFixtureModel(): SiglipModel {
  const folder = fixturePath("siglip");
  const model = new SiglipModel(parseSiglipConfig(readJson(join(folder, "config.json")))).eval();
  loadCheckpoint(model, folder, siglipModelKey);
  return model;
}

test("siglip: SiglipModel matches transformers (hidden states, pooled outputs, embeddings, logits, loss)", { skip: missingFixture("siglip") }, () => {
  const model = loadFixtureModel();
  const goldens = readGoldens("siglip");
  const before = liveTensorCount();
  noGrad(() =>
    tidy(() => {
      const out = model.forward({
        input_ids: goldens.get("inputs.input_ids"),
        pixel_values: goldens.get("inputs.pixel_values"),
        output_hidden_states: true,
        return_loss: true,
      });
      for (const tower of ["vision", "text"] as const) {
        const towerOut = tower === "vision" ? out.vision_model_output : out.text_model_output;
        assert.equal(towerOut.hidden_states!.length, goldens.meta[`${tower}_hidden_states`]);
        towerOut.hidden_states!.forEach((h, i) => assertClose(h, goldens.get(`${tower}.hidden_states.${i}`), TOLERANCE.hidden, `${tower}.hidden_states.${i}`));
        assertClose(towerOut.last_hidden_state, goldens.get(`${tower}.last_hidden_state`), TOLERANCE.hidden, `${tower}.last_hidden_state`);
        assertClose(towerOut.pooler_output!, goldens.get(`${tower}.pooler_output`), TOLERANCE.hidden, `${tower}.pooler_output`);
      }
      for (const key of ["image_embeds", "text_embeds", "logits_per_image", "logits_per_text"] as const) {
        assertClose(out[key], goldens.get(key), TOLERANCE.hidden, key);
      }
      assertClose(out.loss!, goldens.get("loss"), TOLERANCE.loss, "loss");
    }),
  );
  assert.equal(liveTensorCount(), before, "forward leaves no tensors behind");
  goldens.dispose();
  model.dispose();
});

test("siglip: padded text with an attention mask, and an interpolated non-square image, match transformers", { skip: missingFixture("siglip") }, () => {
  const model = loadFixtureModel();
  const goldens = readGoldens("siglip");
  noGrad(() =>
    tidy(() => {
      const masked = model.text_model.forward({ input_ids: goldens.get("inputs.input_ids"), attention_mask: goldens.get("inputs.attention_mask") });
      assertClose(masked.last_hidden_state, goldens.get("masked_text.last_hidden_state"), TOLERANCE.hidden, "masked last_hidden_state");
      assertClose(masked.pooler_output!, goldens.get("masked_text.pooler_output"), TOLERANCE.hidden, "masked pooler_output");
      const wide = model.vision_model.forward(goldens.get("inputs.wide_pixel_values"), { interpolate_pos_encoding: true, output_hidden_states: true });
      wide.hidden_states!.forEach((h, i) => assertClose(h, goldens.get(`wide.hidden_states.${i}`), TOLERANCE.hidden, `wide.hidden_states.${i}`));
      assertClose(wide.last_hidden_state, goldens.get("wide.last_hidden_state"), TOLERANCE.hidden, "wide.last_hidden_state");
      assertClose(wide.pooler_output!, goldens.get("wide.pooler_output"), TOLERANCE.hidden, "wide.pooler_output");
      assert.throws(() => model.vision_model.forward(goldens.get("inputs.wide_pixel_values")), /15 patches but the model has 16 positions/);
    }),
  );
  goldens.dispose();
  model.dispose();
});

test("siglip: a SiglipVisionModel loads from the full checkpoint's vision tower in both key layouts", { skip: missingFixture("siglip") }, () => {
  const full = loadFixtureModel();
  const config = full.config.vision_config;
  const prefixed = new SiglipVisionModel(config);
  const flat = new SiglipVisionModel(config);
  const state = full.vision_model.stateDict();
  // Hub layout (vision_model.*) and transformers 5's single-tower layout (no prefix).
  prefixed.loadStateDict(new Map([...state].map(([k, t]) => [siglipVisionKey(`vision_model.${k}`)!, t])));
  flat.loadStateDict(new Map([...state].map(([k, t]) => [siglipVisionKey(k)!, t])));
  noGrad(() =>
    tidy(() => {
      const pixels = randn([1, 3, 32, 32]);
      const reference = full.vision_model.forward(pixels).pooler_output!;
      assertClose(prefixed.forward({ pixel_values: pixels }).pooler_output!, reference, 0, "prefixed layout");
      assertClose(flat.forward({ pixel_values: pixels }).pooler_output!, reference, 0, "flat layout");
    }),
  );
  for (const m of [full, prefixed, flat]) m.dispose();
});

// ---- checks without fixtures ----

test("siglip: the pooling head's attention equals torch's MultiheadAttention written out (q, k, v from stacked in_proj)", () => {
  manualSeed(7);
  const attention = new MultiheadAttention(8, 2).double();
  noGrad(() => {
    attention.in_proj_bias.copy_(randn([24], { dtype: "float64" }));
  });
  noGrad(() =>
    tidy(() => {
      const query = randn([2, 1, 8], { dtype: "float64" });
      const keys = randn([2, 5, 8], { dtype: "float64" });
      const got = attention.forward(query, keys, keys);
      // Reference per head with explicit matmuls and softmax.
      const w = attention.in_proj_weight, b = attention.in_proj_bias;
      const q = F.linear(query, w.narrow(0, 0, 8), b.narrow(0, 0, 8));
      const k = F.linear(keys, w.narrow(0, 8, 8), b.narrow(0, 8, 8));
      const v = F.linear(keys, w.narrow(0, 16, 8), b.narrow(0, 16, 8));
      const perHead = [0, 1].map((h) => {
        const qh = q.narrow(2, 4 * h, 4), kh = k.narrow(2, 4 * h, 4), vh = v.narrow(2, 4 * h, 4);
        return qh.matmul(kh.transpose(1, 2)).div(2).softmax(-1).matmul(vh);
      });
      const expected = attention.out_proj.forward(cat(perHead, 2));
      assertClose(got, expected, 1e-12, "multihead attention");
    }),
  );
  attention.dispose();
});

test("siglip: the text tower is bidirectional, pools the last position, and masks padding keys", () => {
  manualSeed(8);
  const model = new SiglipTextModel(parseSiglipTextConfig(TINY_TEXT)).eval();
  noGrad(() =>
    tidy(() => {
      const ids = tensor([[5, 6, 7, 1, 1]], { dtype: "int64" });
      const changedLast = tensor([[5, 6, 7, 1, 9]], { dtype: "int64" });
      const a = model.forward({ input_ids: ids });
      const b = model.forward({ input_ids: changedLast });
      assert.ok(a.last_hidden_state.select(1, 0).sub(b.last_hidden_state.select(1, 0)).abs().max().item() > 1e-4, "the first position sees a later change");
      assertClose(a.pooler_output!, model.text_model.head.forward(a.last_hidden_state.select(1, 4)), 0, "pooled = head(last position)");
      const mask = tensor([[1, 1, 1, 0, 0]], { dtype: "int64" });
      const maskedA = model.forward({ input_ids: ids, attention_mask: mask });
      const maskedB = model.forward({ input_ids: tensor([[5, 6, 7, 3, 4]], { dtype: "int64" }), attention_mask: mask });
      assertClose(maskedA.last_hidden_state.narrow(1, 0, 3), maskedB.last_hidden_state.narrow(1, 0, 3), 1e-6, "masked keys do not matter");
    }),
  );
  model.dispose();
});

test("siglip: logits are scaled cosines plus bias; the sigmoid loss matches a JS reference", () => {
  manualSeed(9);
  const model = new SiglipModel(parseSiglipConfig({ text_config: TINY_TEXT, vision_config: TINY_VISION })).eval();
  noGrad(() => {
    model.logit_scale.fill_(Math.log(7));
    model.logit_bias.fill_(-2.5);
  });
  noGrad(() =>
    tidy(() => {
      const out = model.forward({ input_ids: randint(2, 50, [3, 6]), pixel_values: randn([3, 3, 16, 16]), return_loss: true });
      const cosine = out.text_embeds.matmul(out.image_embeds.T);
      assertClose(out.logits_per_text, cosine.mul(7).sub(2.5), 1e-5, "scale and bias");
      assertClose(out.logits_per_image, out.logits_per_text.T, 0, "transpose");
      const z = out.logits_per_text.toArray() as number[][];
      const logSigmoid = (x: number) => -Math.log1p(Math.exp(-x));
      const expected = z.reduce((s, row, i) => s - row.reduce((r, v, j) => r + logSigmoid(i === j ? v : -v), 0), 0) / z.length;
      assert.ok(Math.abs(out.loss!.item() - expected) < 1e-5, `loss ${out.loss!.item()} vs ${expected}`);
      assert.throws(() => siglipSigmoidLoss(out.logits_per_text.narrow(0, 0, 2)), /as many texts as images/);
    }),
  );
  model.dispose();
});

test("siglip: vision tower without head, and interpolation at the native size is the identity", () => {
  manualSeed(10);
  const model = new SiglipVisionModel(parseSiglipVisionConfig({ ...TINY_VISION, vision_use_head: false })).eval();
  assert.equal(model.vision_model.head, null);
  noGrad(() =>
    tidy(() => {
      const pixels = randn([1, 3, 16, 16]);
      const out = model.forward({ pixel_values: pixels });
      assert.equal(out.pooler_output, null);
      assert.deepEqual(out.last_hidden_state.shape, [1, 16, 16]);
      assertClose(model.forward({ pixel_values: pixels, interpolate_pos_encoding: true }).last_hidden_state, out.last_hidden_state, 0, "identity");
      const partial = model.forward({ pixel_values: pixels, output_hidden_states: true, lastLayer: 1 });
      assert.equal(partial.hidden_states!.length, 2);
      assertClose(partial.last_hidden_state, model.forward({ pixel_values: pixels, output_hidden_states: true }).hidden_states![1], 0, "lastLayer output");
    }),
  );
  model.dispose();
});
