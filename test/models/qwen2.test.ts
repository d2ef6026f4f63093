// Qwen2: parity with transformers on the fixtures, and a float64 decoder written out in loops for the
// q/k/v biases and the sliding-window layers; config defaults.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tensor, tidy, Qwen2ForCausalLM, parseQwen2Config, loadPretrained } from "../../src/index.js";
import {
  missingFixture, fixturePath, randomizeParameters, referenceDecoder, maxDiffToArray, positionsFromMask, checkForwardParity,
} from "./text_helpers.js";

const TINY = {
  model_type: "qwen2", vocab_size: 40, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6, pad_token_id: 0,
};

const int64 = (rows: number[][]) => tensor(rows, { dtype: "int64" });

for (const name of ["qwen2-tied", "qwen2-sliding"]) {
  test(`${name}: hidden states, logits, loss and every gradient match transformers`, { skip: missingFixture(name) }, async () => {
    await checkForwardParity(name);
  });
}

test("qwen2-tied: q/k/v have biases, o_proj has none, lm_head is the embedding", { skip: missingFixture("qwen2-tied") }, async () => {
  const model = (await loadPretrained(fixturePath("qwen2-tied"))) as unknown as Qwen2ForCausalLM;
  assert.ok(model instanceof Qwen2ForCausalLM);
  const attention = model.model.layers.at(0).self_attn;
  assert.ok(attention.q_proj.bias && attention.k_proj.bias && attention.v_proj.bias);
  assert.equal(attention.o_proj.bias, null);
  assert.equal(model.lm_head.weight, model.model.embed_tokens.weight);
  model.dispose();
});

function check(overrides: Record<string, unknown>, windows: (number | null)[], seed: number): void {
  const config = parseQwen2Config({ ...TINY, ...overrides });
  const model = new Qwen2ForCausalLM(config);
  randomizeParameters(model, seed);
  model.eval().double();
  const ids = [[5, 9, 13, 2, 7, 30, 22, 1], [0, 0, 0, 11, 4, 19, 8, 3]];
  const mask = [[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]];
  const positions = positionsFromMask(mask);
  const invFreq = [0, 2].map((i) => Math.pow(10000, -i / 4));
  const expected = referenceDecoder(model, { numHeads: 4, numKvHeads: 2, headDim: 4, eps: 1e-6, invFreq, windows, tied: config.tie_word_embeddings }, ids, mask, positions);
  tidy(() => {
    const out = model.forward({ input_ids: int64(ids), attention_mask: int64(mask), position_ids: int64(positions), output_hidden_states: true });
    const diff = maxDiffToArray(out.logits, expected.logits);
    assert.ok(diff < 1e-5, `logits differ by ${diff}`);
    out.hidden_states!.forEach((h, i) => assert.ok(maxDiffToArray(h, expected.hidden[i]) < 1e-5, `hidden_states[${i}]`));
  });
  model.dispose();
}

test("forward equals a float64 decoder written out in loops (biases, GQA, tied head, left padding)", () => {
  check({ tie_word_embeddings: true }, [null, null], 21);
});

test("sliding-window layers attend to the last sliding_window positions only", () => {
  // Layer 0 is full attention (max_window_layers 1), layer 1 sees a window of 3 positions.
  check({ use_sliding_window: true, sliding_window: 3, max_window_layers: 1 }, [null, 3], 23);
});

test("config: transformers' defaults, and sliding layers only when use_sliding_window", () => {
  const defaults = parseQwen2Config({});
  assert.equal(defaults.vocab_size, 151936);
  assert.equal(defaults.num_key_value_heads, 32);
  assert.equal(defaults.max_position_embeddings, 32768);
  assert.equal(defaults.sliding_window, null);
  assert.equal(defaults.tie_word_embeddings, false);
  assert.deepEqual(defaults.rope_parameters, { rope_type: "default", rope_theta: 10000 });
  assert.ok(defaults.layer_types.every((t) => t === "full_attention"));
  const sliding = parseQwen2Config({ num_hidden_layers: 4, use_sliding_window: true, sliding_window: 16, max_window_layers: 2 });
  assert.deepEqual(sliding.layer_types, ["full_attention", "full_attention", "sliding_attention", "sliding_attention"]);
  assert.throws(() => parseQwen2Config({ num_hidden_layers: 2, layer_types: ["full_attention"] }), /layer_types has 1 entries but num_hidden_layers is 2/);
  assert.throws(() => parseQwen2Config({ use_sliding_window: "yes" }, "my/config.json"), /my\/config\.json: "use_sliding_window" must be true or false/);
});
