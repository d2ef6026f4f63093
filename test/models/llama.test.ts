// Llama: parity with transformers on the fixtures (hidden states, logits, loss, every gradient), and
// self-consistency that holds without them: a float64 decoder written out in loops, KV-cache decoding,
// left padding, the loss formula, tied weights, and loading HF folders.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Tensor, tensor, tidy, dispose, noGrad, liveTensorCount, cat,
  LlamaForCausalLM, parseLlamaConfig, loadPretrained, KVCache, causalLMLoss, supportedModelTypes,
} from "../../src/index.js";
import { writeSafetensors } from "../../src/torch/safetensors.js";
import {
  missingFixture, fixturePath, assertClose, randomizeParameters, referenceDecoder, maxDiffToArray, positionsFromMask, checkForwardParity,
} from "./text_helpers.js";

const TINY = {
  model_type: "llama", vocab_size: 40, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
  num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 64, rms_norm_eps: 1e-6, pad_token_id: 0,
};

function tinyLlama(overrides: Record<string, unknown> = {}, seed = 1): LlamaForCausalLM {
  const model = new LlamaForCausalLM(parseLlamaConfig({ ...TINY, ...overrides }));
  randomizeParameters(model, seed);
  return model.eval();
}

const int64 = (rows: number[][]) => tensor(rows, { dtype: "int64" });

// ---- parity with transformers ----

for (const name of ["llama-gqa-untied", "llama-tied-linear", "llama-dynamic"]) {
  test(`${name}: hidden states, logits, loss and every gradient match transformers`, { skip: missingFixture(name) }, async () => {
    await checkForwardParity(name);
  });
}

test("llama-gqa-untied: config.json in the old rope spelling is read as llama3 scaling", { skip: missingFixture("llama-gqa-untied") }, async () => {
  const model = (await loadPretrained(fixturePath("llama-gqa-untied"))) as unknown as LlamaForCausalLM;
  assert.deepEqual(model.config.rope_parameters, {
    rope_type: "llama3", rope_theta: 500000, factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16,
  });
  assert.notEqual(model.lm_head.weight, model.model.embed_tokens.weight);
  model.dispose();
});

test("llama-tied-linear: lm_head shares the embedding Parameter", { skip: missingFixture("llama-tied-linear") }, async () => {
  const model = (await loadPretrained(fixturePath("llama-tied-linear"))) as unknown as LlamaForCausalLM;
  assert.equal(model.lm_head.weight, model.model.embed_tokens.weight);
  assert.equal(model.config.rope_parameters.rope_type, "linear");
  model.dispose();
});

// ---- self-consistency ----

test("forward equals a float64 decoder written out in loops (GQA, biases, left padding)", () => {
  const model = tinyLlama({ attention_bias: true, mlp_bias: true }, 3).double();
  const ids = [[5, 9, 13, 2, 7, 30], [0, 0, 11, 4, 19, 8]];
  const mask = [[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]];
  const positions = positionsFromMask(mask);
  const invFreq = [0, 2].map((i) => Math.pow(10000, -i / 4));
  const expected = referenceDecoder(model, { numHeads: 4, numKvHeads: 2, headDim: 4, eps: 1e-6, invFreq, windows: [null, null], tied: false }, ids, mask, positions);
  tidy(() => {
    const out = model.forward({ input_ids: int64(ids), attention_mask: int64(mask), position_ids: int64(positions), output_hidden_states: true });
    assert.ok(maxDiffToArray(out.logits, expected.logits) < 1e-5, `logits differ by ${maxDiffToArray(out.logits, expected.logits)}`);
    out.hidden_states!.forEach((h, i) => assert.ok(maxDiffToArray(h, expected.hidden[i]) < 1e-5, `hidden_states[${i}]`));
  });
  model.dispose();
});

test("rope scaling reaches attention: linear factor 2 equals halving the positions", () => {
  const plain = tinyLlama({}, 5);
  const scaled = tinyLlama({ rope_scaling: { type: "linear", factor: 2 } }, 5);
  tidy(() => {
    const ids = int64([[3, 8, 1, 22, 17, 9, 4, 12]]);
    const even = int64([[0, 2, 4, 6, 8, 10, 12, 14]]);
    const half = int64([[0, 1, 2, 3, 4, 5, 6, 7]]);
    assertClose(scaled.forward({ input_ids: ids, position_ids: even }).logits, plain.forward({ input_ids: ids, position_ids: half }).logits, 1e-5, "linear rope");
  });
  plain.dispose();
  scaled.dispose();
});

test("decoding with the KV cache gives the logits of the full forward (padded batch)", () => {
  const model = tinyLlama({}, 7);
  tidy(() => {
    const ids = [[4, 8, 15, 16, 23, 34, 2, 9], [0, 0, 0, 5, 6, 7, 1, 3]];
    const mask = [[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1]];
    const positions = positionsFromMask(mask);
    const full = model.forward({ input_ids: int64(ids), attention_mask: int64(mask), position_ids: int64(positions) }).logits;
    const cache = new KVCache();
    const prefill = 5;
    const parts: Tensor[] = [
      model.forward({
        input_ids: int64(ids.map((r) => r.slice(0, prefill))), attention_mask: int64(mask.map((r) => r.slice(0, prefill))),
        position_ids: int64(positions.map((r) => r.slice(0, prefill))), past_key_values: cache,
      }).logits,
    ];
    for (let t = prefill; t < 8; t++) {
      const out = model.forward({
        input_ids: int64(ids.map((r) => [r[t]])), attention_mask: int64(mask.map((r) => r.slice(0, t + 1))),
        position_ids: int64(positions.map((r) => [r[t]])), past_key_values: cache,
      });
      assert.equal(out.past_key_values, cache);
      parts.push(out.logits);
    }
    assert.equal(cache.getSeqLength(), 8);
    const stepped = cat(parts, 1);
    // Padded query rows are compared too: both paths zero their attention.
    assertClose(stepped, full, 1e-5, "cached decoding");
    cache.dispose();
  });
  model.dispose();
});

test("a left-padded row gives the logits of the same row alone", () => {
  const model = tinyLlama({}, 9);
  tidy(() => {
    const row = [7, 3, 19, 25, 11];
    const alone = model.forward({ input_ids: int64([row]) }).logits;
    const mask = [[1, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1]];
    const batch = model.forward({
      input_ids: int64([[1, 2, 3, 4, 5, 6, 7], [0, 0, ...row]]), attention_mask: int64(mask), position_ids: int64(positionsFromMask(mask)),
    }).logits;
    assertClose(batch.select(0, 1).narrow(0, 2, 5), alone.select(0, 0), 1e-5, "padded row");
  });
  model.dispose();
});

test("loss is the mean next-token cross entropy over labels that are not -100", () => {
  tidy(() => {
    const logits = tensor([[[0.1, 1.2, -0.3], [2.0, 0.5, 0.1], [0.3, 0.3, 0.9], [1.0, -1.0, 0.0]]]);
    const labels = int64([[2, 0, -100, 1]]);
    // position t predicts labels[t + 1]: (0 -> 0), (1 -> -100 skipped), (2 -> 1); the last position has no target.
    const logSoftmax = (row: number[], k: number) => row[k] - Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
    const expected = -(logSoftmax([0.1, 1.2, -0.3], 0) + logSoftmax([0.3, 0.3, 0.9], 1)) / 2;
    assert.ok(Math.abs(causalLMLoss(logits, labels).item() - expected) < 1e-6);
    const summed = causalLMLoss(logits, labels, { numItemsInBatch: 4 }).item();
    assert.ok(Math.abs(summed - (expected * 2) / 4) < 1e-6, "sum / num_items_in_batch");
  });
});

test("tied embeddings: one Parameter, gradient from both uses (finite differences in float64)", () => {
  const model = tinyLlama({ tie_word_embeddings: true }, 11).double();
  assert.equal(model.lm_head.weight, model.model.embed_tokens.weight);
  assert.equal(model.namedParameters().filter(([n]) => n.includes("embed_tokens") || n.includes("lm_head")).length, 1);
  const ids = int64([[3, 9, 27, 5, 14]]);
  const lossAt = () => noGrad(() => tidy(() => model.forward({ input_ids: ids, labels: ids }).loss!.item()));
  const out = model.forward({ input_ids: ids, labels: ids });
  out.loss!.backward();
  const weight = model.model.embed_tokens.weight;
  const grad = weight.grad!.toArray() as number[][];
  // Row 9 is both an input token and a target; row 33 only appears through the LM head.
  for (const [r, c] of [[9, 2], [33, 5], [3, 0]]) {
    const eps = 1e-6;
    const original = (weight.toArray() as number[][])[r][c];
    const setEntry = (value: number) => noGrad(() => tidy(() => weight.select(0, r).select(0, c).fill_(value)));
    setEntry(original + eps);
    const up = lossAt();
    setEntry(original - eps);
    const down = lossAt();
    setEntry(original);
    const numeric = (up - down) / (2 * eps);
    assert.ok(Math.abs(numeric - grad[r][c]) < 1e-6, `d loss / d embed[${r}][${c}]: numeric ${numeric}, autograd ${grad[r][c]}`);
  }
  dispose(out);
  ids.dispose();
  model.dispose();
});

test("forward holds no tensors afterwards (memory stays flat over repeated calls)", () => {
  const model = tinyLlama({}, 13);
  const ids = int64([[1, 2, 3, 4], [0, 5, 6, 7]]);
  const mask = int64([[1, 1, 1, 1], [0, 1, 1, 1]]);
  const run = () => dispose(model.forward({ input_ids: ids, attention_mask: mask, labels: ids, output_hidden_states: true }));
  run();
  const before = liveTensorCount();
  for (let i = 0; i < 3; i++) run();
  assert.equal(liveTensorCount(), before);
  dispose([ids, mask]);
  model.dispose();
});

// ---- loading Hugging Face folders ----

function writeFolder(model: LlamaForCausalLM, config: Record<string, unknown>, skip: string[] = []): string {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-llama-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const state = new Map([...model.stateDict()].filter(([name]) => !skip.includes(name)));
  writeSafetensors(join(dir, "model.safetensors"), state);
  return dir;
}

test("loadPretrained: weights, tied head without lm_head.weight in the file, generation_config", async () => {
  const config = { ...TINY, tie_word_embeddings: true, unknown_future_key: { anything: 1 } };
  const source = tinyLlama(config, 15);
  const dir = writeFolder(source, config, ["lm_head.weight"]);
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: [2, 7], pad_token_id: 0, do_sample: false }));
  try {
    const loaded = (await loadPretrained(dir)) as unknown as LlamaForCausalLM & { generationConfig: Record<string, unknown> };
    assert.equal(loaded.lm_head.weight, loaded.model.embed_tokens.weight);
    assert.equal(loaded.training, false);
    assert.deepEqual(loaded.generationConfig, { eos_token_id: [2, 7], pad_token_id: 0, do_sample: false });
    tidy(() => {
      const ids = int64([[1, 5, 9, 12]]);
      assertClose(loaded.forward({ input_ids: ids }).logits, source.forward({ input_ids: ids }).logits, 0, "loaded logits");
    });
    loaded.dispose();
    const bf16 = (await loadPretrained(dir, { dtype: "bf16" })) as unknown as LlamaForCausalLM;
    assert.equal(bf16.model.layers.at(0).self_attn.q_proj.weight.dtype, "bfloat16");
    assert.equal(bf16.model.rotary_emb.invFreq.dtype, "float32", "rope frequencies stay float32");
    bf16.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    source.dispose();
  }
});

test("loadPretrained: dispatch by architectures when model_type is absent", async () => {
  const { model_type: _dropped, ...config } = { ...TINY, architectures: ["LlamaForCausalLM"] };
  const source = tinyLlama({}, 17);
  const dir = writeFolder(source, config);
  try {
    const loaded = await loadPretrained(dir);
    assert.ok(loaded instanceof LlamaForCausalLM);
    loaded.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    source.dispose();
  }
});

test("loadPretrained: missing weights, wrong shapes, typos in config.json and unknown types are clear errors", async () => {
  const source = tinyLlama({}, 19);
  const missing = writeFolder(source, TINY, ["model.layers.1.mlp.up_proj.weight"]);
  const wrongShape = writeFolder(source, { ...TINY, intermediate_size: 32 });
  const typo = writeFolder(source, { ...TINY, num_attention_heads: "4" });
  const unknown = writeFolder(source, { ...TINY, model_type: "gpt_neo" });
  const oldUntied = writeFolder(source, { ...TINY, rope_scaling: { type: "yarn", factor: 4 } });
  try {
    await assert.rejects(loadPretrained(missing), /missing from the checkpoint \(1\): model\.layers\.1\.mlp\.up_proj\.weight/);
    await assert.rejects(loadPretrained(wrongShape), /shape mismatch.*gate_proj\.weight: checkpoint \[24,16\], model \[32,16\]/s);
    await assert.rejects(loadPretrained(typo), (error: Error) => {
      assert.match(error.message, /config\.json: "num_attention_heads" must be an integer, got the string "4"/);
      assert.ok(error.message.includes(typo), "names the file");
      return true;
    });
    await assert.rejects(loadPretrained(unknown), new RegExp(`model_type "gpt_neo" is not supported; supported model types: .*llama.*qwen2`));
    await assert.rejects(loadPretrained(oldUntied), /rope_type "yarn" is not supported; supported rope types: default, linear, dynamic, llama3/);
    assert.ok(supportedModelTypes().includes("llama") && supportedModelTypes().includes("qwen2"));
  } finally {
    for (const dir of [missing, wrongShape, typo, unknown, oldUntied]) rmSync(dir, { recursive: true, force: true });
    source.dispose();
  }
});
