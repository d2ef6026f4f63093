// Rotary embeddings against their formulas written out, the dynamic-NTK state, and config parsing of both
// rope spellings, defaults and typos.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  tensor, tidy, RotaryEmbedding, ropeFrequencies, readRopeParameters, applyRotaryPosEmb, ConfigReader, parseLlamaConfig,
  type RopeParameters,
} from "../../src/index.js";

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
const shape = { headDim: 8, maxPositionEmbeddings: 8 };

test("default and linear frequencies: theta^(-2i/d), divided by factor", () => {
  const base = ropeFrequencies({ rope_type: "default", rope_theta: 10000 }, shape).invFreq;
  assert.deepEqual(base.length, 4);
  [1, 0.1, 0.01, 0.001].forEach((f, i) => close(base[i], f, 1e-12, `default inv_freq[${i}]`));
  const linear = ropeFrequencies({ rope_type: "linear", rope_theta: 10000, factor: 4 }, shape).invFreq;
  [0.25, 0.025, 0.0025, 0.00025].forEach((f, i) => close(linear[i], f, 1e-12, `linear inv_freq[${i}]`));
});

test("llama3 frequencies: high kept, low divided by factor, medium smoothed", () => {
  const params: RopeParameters = { rope_type: "llama3", rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 };
  const got = ropeFrequencies(params, shape).invFreq;
  const f = [0, 2, 4, 6].map((i) => Math.pow(500000, -i / 8));
  // wavelengths 2*pi/f: 6.28 (between 16/4 = 4 and 16/1 = 16: smoothed), then 167, 4457, 118000 (> 16: divided)
  const smooth = (16 / ((2 * Math.PI) / f[0]) - 1) / (4 - 1);
  close(got[0], (1 - smooth) * (f[0] / 8) + smooth * f[0], 1e-12, "medium frequency");
  for (const i of [1, 2, 3]) close(got[i], f[i] / 8, 1e-12, `low frequency ${i}`);
  const kept = ropeFrequencies({ ...params, original_max_position_embeddings: 16, high_freq_factor: 2, low_freq_factor: 1 }, { headDim: 8, maxPositionEmbeddings: 8 }).invFreq;
  close(kept[0], 1, 1e-12, "wavelength 6.28 < 16 / 2 = 8: kept");
});

test("dynamic frequencies: base * (factor * L / max - (factor - 1))^(d / (d - 2)) once L > max", () => {
  const params: RopeParameters = { rope_type: "dynamic", rope_theta: 10000, factor: 2 };
  const short = ropeFrequencies(params, shape, 6).invFreq;
  [1, 0.1, 0.01, 0.001].forEach((f, i) => close(short[i], f, 1e-12, `short inv_freq[${i}]`));
  const long = ropeFrequencies(params, shape, 12).invFreq;
  const grownBase = 10000 * Math.pow((2 * 12) / 8 - 1, 8 / 6);
  [0, 2, 4, 6].forEach((i, n) => close(long[n], Math.pow(grownBase, -i / 8), 1e-12, `long inv_freq[${n}]`));
});

test("cos / sin tables: cos(p * f) and sin(p * f) for each half of the head", () => {
  const rotary = new RotaryEmbedding({ rope_type: "default", rope_theta: 10000 }, shape);
  tidy(() => {
    const { cos, sin } = rotary.forward(tensor([[0, 1, 5, 31]], { dtype: "int64" }));
    assert.deepEqual(cos.shape, [1, 4, 8]);
    const c = cos.toArray() as number[][][];
    const s = sin.toArray() as number[][][];
    [0, 1, 5, 31].forEach((p, t) => {
      [1, 0.1, 0.01, 0.001].forEach((f, i) => {
        for (const d of [i, i + 4]) {
          close(c[0][t][d], Math.cos(p * f), 1e-6, `cos p=${p} d=${d}`);
          close(s[0][t][d], Math.sin(p * f), 1e-6, `sin p=${p} d=${d}`);
        }
      });
    });
    const bf16 = rotary.forward(tensor([[0, 1]], { dtype: "int64" }), "bfloat16");
    assert.equal(bf16.cos.dtype, "bfloat16");
  });
  rotary.dispose();
});

test("applyRotaryPosEmb turns each pair (i, i + d/2) by its angle", () => {
  tidy(() => {
    const x = [0.3, -1.2, 0.5, 2.0, 0.7, 0.1, -0.4, 1.5];
    const q = tensor([[[x]]]);
    const rotary = new RotaryEmbedding({ rope_type: "default", rope_theta: 10000 }, shape);
    const { cos, sin } = rotary.forward(tensor([[3]], { dtype: "int64" }));
    const { q: rq, k: rk } = applyRotaryPosEmb(q, q, cos, sin);
    const out = (rq.toArray() as number[][][][])[0][0][0];
    [1, 0.1, 0.01, 0.001].forEach((f, i) => {
      const a = 3 * f;
      close(out[i], x[i] * Math.cos(a) - x[i + 4] * Math.sin(a), 1e-6, `first half ${i}`);
      close(out[i + 4], x[i + 4] * Math.cos(a) + x[i] * Math.sin(a), 1e-6, `second half ${i}`);
    });
    assert.deepEqual(rk.toArray(), rq.toArray());
    rotary.dispose();
  });
});

test("dynamic rope keeps transformers' state: grow past the cache, keep, reset below the original length", () => {
  const rotary = new RotaryEmbedding({ rope_type: "dynamic", rope_theta: 10000, factor: 2 }, shape);
  const positions = (n: number) => tensor([Array.from({ length: n }, (_, i) => i)], { dtype: "int64" });
  const invFreq = () => rotary.invFreq.dataAsNumbers();
  const original = invFreq();
  const at = (length: number) => ropeFrequencies(rotary.params, shape, length).invFreq;
  tidy(() => rotary.forward(positions(12)));
  invFreq().forEach((f, i) => close(f, at(12)[i], 1e-6, `grown to 12 [${i}]`));
  tidy(() => rotary.forward(positions(10)));
  invFreq().forEach((f, i) => close(f, at(12)[i], 1e-6, `kept at 12 for length 10 [${i}]`));
  tidy(() => rotary.forward(positions(4)));
  invFreq().forEach((f, i) => close(f, original[i], 1e-7, `reset for length 4 [${i}]`));
  rotary.dispose();
});

const rope = (raw: Record<string, unknown>, max = 2048) => readRopeParameters(new ConfigReader(raw, "config.json"), { maxPositionEmbeddings: max });

test("rope config: old (rope_theta + rope_scaling) and new (rope_parameters) spellings agree", () => {
  const expected = { rope_type: "linear", rope_theta: 500000, factor: 2 };
  assert.deepEqual(rope({ rope_theta: 500000, rope_scaling: { type: "linear", factor: 2 } }), expected);
  assert.deepEqual(rope({ rope_theta: 500000, rope_scaling: { rope_type: "linear", factor: 2.0 } }), expected);
  assert.deepEqual(rope({ rope_parameters: { rope_type: "linear", rope_theta: 500000, factor: 2 } }), expected);
  // transformers 5 writes rope_theta: null / rope_scaling: null next to rope_parameters
  assert.deepEqual(rope({ rope_theta: null, rope_scaling: null, rope_parameters: { rope_type: "linear", rope_theta: 500000, factor: 2 } }), expected);
  assert.deepEqual(rope({}), { rope_type: "default", rope_theta: 10000 });
  assert.deepEqual(rope({ rope_theta: 1e6 }), { rope_type: "default", rope_theta: 1e6 });
  assert.deepEqual(rope({ rope_theta: 1, rope_parameters: { rope_type: "default", rope_theta: 7 } }), { rope_type: "default", rope_theta: 7 });
  const llama3 = rope({ rope_theta: 500000, rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }, 131072);
  assert.equal(llama3.original_max_position_embeddings, 131072, "defaults to max_position_embeddings");
  const given = rope({ rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } }, 131072);
  assert.equal(given.original_max_position_embeddings, 8192);
});

test("rope config errors name the key, the file and the fix", () => {
  assert.throws(() => rope({ rope_scaling: { type: "linear" } }), /config\.json: rope_scaling\.factor is required for rope_type "linear"/);
  assert.throws(() => rope({ rope_parameters: { rope_type: "longrope" } }), /rope_type "longrope" is not supported; supported rope types: default, linear, dynamic, llama3/);
  assert.throws(() => rope({ rope_theta: "10000" }), /config\.json: "rope_theta" must be a number, got the string "10000"/);
  assert.throws(() => rope({ rope_scaling: { type: "linear", factor: "2" } }), /"rope_scaling\.factor" must be a number/);
  assert.throws(() => rope({ rope_scaling: [1, 2] }), /"rope_scaling" must be an object/);
});

test("LlamaConfig: transformers' defaults, unknown keys tolerated, typed errors", () => {
  const c = parseLlamaConfig({ some_new_field: [1, 2, 3], torch_dtype: "bfloat16" });
  assert.equal(c.vocab_size, 32000);
  assert.equal(c.hidden_size, 4096);
  assert.equal(c.num_attention_heads, 32);
  assert.equal(c.num_key_value_heads, 32, "defaults to num_attention_heads");
  assert.equal(c.head_dim, 128, "hidden_size / num_attention_heads");
  assert.equal(c.max_position_embeddings, 2048);
  assert.equal(c.rms_norm_eps, 1e-6);
  assert.equal(c.tie_word_embeddings, false);
  assert.equal(c.attention_bias, false);
  assert.equal(c.mlp_bias, false);
  assert.equal(c.bos_token_id, 1);
  assert.deepEqual(c.eos_token_id, [2]);
  assert.equal(c.pad_token_id, null);
  assert.equal(parseLlamaConfig({ hidden_size: 64, num_attention_heads: 4, head_dim: 32 }).head_dim, 32);
  assert.deepEqual(parseLlamaConfig({ eos_token_id: [128001, 128009] }).eos_token_id, [128001, 128009]);
  assert.equal(parseLlamaConfig({ eos_token_id: null }).eos_token_id, null);
  assert.throws(() => parseLlamaConfig({ num_attention_heads: 6, num_key_value_heads: 4 }), /num_attention_heads \(6\) must be a multiple of num_key_value_heads \(4\)/);
  assert.throws(() => parseLlamaConfig({ hidden_size: 32.5 }, "a/config.json"), /a\/config\.json: "hidden_size" must be an integer/);
  assert.throws(() => parseLlamaConfig({ tie_word_embeddings: "false" }), /"tie_word_embeddings" must be true or false, got the string "false"/);
  assert.throws(() => parseLlamaConfig({ eos_token_id: "2" }), /"eos_token_id" must be an integer or a list of integers/);
});
