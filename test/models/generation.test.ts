// generate(): greedy tokens and per-step logits identical to transformers' generate on the fixtures, and
// without fixtures: equal to a loop of full forwards, padding-independent, eos / pad / stop-string rules,
// seeded sampling, the top-k / top-p filters, and flat memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  tensor, tidy, dispose, liveTensorCount, generate, topKFilter, topPFilter, loadPretrained,
  LlamaForCausalLM, Qwen2ForCausalLM, parseLlamaConfig, parseQwen2Config, type CausalLMInputs, type CausalLMOutput,
} from "../../src/index.js";
import { missingFixture, fixturePath, readGoldens, assertClose, randomizeParameters, positionsFromMask } from "./text_helpers.js";

const TINY = {
  vocab_size: 40, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2, num_attention_heads: 4,
  num_key_value_heads: 2, max_position_embeddings: 64, pad_token_id: 0, eos_token_id: null, bos_token_id: null,
};
const int64 = (rows: number[][]) => tensor(rows, { dtype: "int64" });

function tinyModel(seed: number, kind: "llama" | "qwen2" = "llama"): LlamaForCausalLM | Qwen2ForCausalLM {
  const model = kind === "llama" ? new LlamaForCausalLM(parseLlamaConfig(TINY)) : new Qwen2ForCausalLM(parseQwen2Config(TINY));
  randomizeParameters(model, seed, 0.5);
  return model.eval();
}

const FIXTURES = ["llama-gqa-untied", "llama-tied-linear", "llama-dynamic", "qwen2-tied", "qwen2-sliding"];

for (const name of FIXTURES) {
  test(`${name}: greedy tokens and step logits are transformers' generate`, { skip: missingFixture(name) }, async () => {
    const goldens = readGoldens(name);
    const settings = goldens.meta.generate as { max_new_tokens: number; eos_token_id: number; pad_token_id: number };
    // A fresh model, as in the reference (dynamic rope keeps state between calls).
    const model = (await loadPretrained(fixturePath(name))) as unknown as LlamaForCausalLM;
    try {
      const out = generate(model, {
        input_ids: goldens.get("generate.input_ids"), attention_mask: goldens.get("generate.attention_mask"),
        max_new_tokens: settings.max_new_tokens, do_sample: false, eos_token_id: settings.eos_token_id, pad_token_id: settings.pad_token_id,
        return_dict_in_generate: true, output_logits: true,
      });
      assert.deepEqual(out.sequences.toArray(), goldens.get("generate.sequences").toArray(), `${name}: generated tokens`);
      assertClose(out.logits!, goldens.get("generate.logits"), 1e-4, `${name}: per-step logits`);
      dispose(out);
    } finally {
      model.dispose();
      goldens.dispose();
    }
  });
}

/** Greedy decoding by re-running the whole sequence each step (no cache), for one unpadded row. */
function greedyWithoutCache(model: LlamaForCausalLM | Qwen2ForCausalLM, prompt: number[], steps: number): number[] {
  const ids = [...prompt];
  for (let s = 0; s < steps; s++) {
    const next = tidy(() => {
      const logits = model.forward({ input_ids: int64([ids]) }).logits;
      return logits.select(1, ids.length - 1).argmax(-1).item();
    });
    ids.push(next);
  }
  return ids;
}

test("greedy generation with the cache equals re-running the full sequence each step", () => {
  for (const kind of ["llama", "qwen2"] as const) {
    const model = tinyModel(31, kind);
    const prompt = [5, 17, 3, 29, 11];
    const expected = greedyWithoutCache(model, prompt, 10);
    const got = tidy(() => generate(model, { input_ids: int64([prompt]), max_new_tokens: 10 }).toArray());
    assert.deepEqual(got, [expected], kind);
    model.dispose();
  }
});

test("a left-padded batch generates what each prompt generates alone", () => {
  const model = tinyModel(33);
  const prompts = [[5, 17, 3, 29, 11, 8], [21, 4, 9]];
  const alone = prompts.map((p) => greedyWithoutCache(model, p, 7));
  const got = tidy(() =>
    generate(model, { input_ids: int64([prompts[0], [0, 0, 0, ...prompts[1]]]), attention_mask: int64([[1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1]]), max_new_tokens: 7 }).toArray(),
  ) as number[][];
  assert.deepEqual(got[0], alone[0]);
  assert.deepEqual(got[1], [0, 0, 0, ...alone[1]]);
  model.dispose();
});

test("a row that emits eos is padded with pad_token_id; generation stops once every row has finished", () => {
  const model = tinyModel(35);
  const prompts = [[5, 17, 3, 29], [21, 4, 9, 2]];
  const free = prompts.map((p) => greedyWithoutCache(model, p, 6).slice(4));
  const eos = free[0][1]; // row 0's second new token
  const pad = 39;
  const rowFinishes = (tokens: number[]) => tokens.indexOf(eos);
  const got = tidy(() => generate(model, { input_ids: int64(prompts), max_new_tokens: 6, eos_token_id: [38, eos], pad_token_id: pad }).toArray()) as number[][];
  const stop0 = rowFinishes(free[0]);
  const stop1 = rowFinishes(free[1]);
  const steps = Math.min(6, Math.max(stop0 < 0 ? 6 : stop0 + 1, stop1 < 0 ? 6 : stop1 + 1));
  const expectRow = (tokens: number[], stop: number) => tokens.slice(0, steps).map((t, i) => (stop >= 0 && i > stop ? pad : t));
  assert.deepEqual(got[0].slice(4), expectRow(free[0], stop0));
  assert.deepEqual(got[1].slice(4), expectRow(free[1], stop1));
  // Both rows finished: nothing is generated past the later eos.
  const both = tidy(() => generate(model, { input_ids: int64([prompts[0]]), max_new_tokens: 6, eos_token_id: eos }).toArray()) as number[][];
  assert.deepEqual(both[0].slice(4), free[0].slice(0, 2));
  model.dispose();
});

test("stop strings end a row when its decoded text ends with one", () => {
  const model = tinyModel(37);
  const prompt = [5, 17, 3, 29];
  const free = greedyWithoutCache(model, prompt, 6).slice(4);
  // A tokenizer that spells token t as the letter of t, so the third generated token ends "<t2><t3>".
  const letter = (t: number) => String.fromCharCode(65 + t);
  const tokenizer = { decode: (ids: number[]) => ids.map(letter).join("") };
  const stop = letter(free[1]) + letter(free[2]);
  const got = tidy(() => generate(model, { input_ids: int64([prompt]), max_new_tokens: 6, stop_strings: [stop, "never"], tokenizer }).toArray()) as number[][];
  const firstMatch = free.findIndex((_, i) => i >= 1 && letter(free[i - 1]) + letter(free[i]) === stop);
  assert.deepEqual(got[0].slice(4), free.slice(0, firstMatch + 1));
  assert.throws(() => generate(model, { input_ids: int64([prompt]), stop_strings: "x" }), /stop_strings needs a tokenizer/);
  model.dispose();
});

test("sampling is reproducible with a seed, and top_k = 1 is greedy", () => {
  const model = tinyModel(39);
  const input = int64([[5, 17, 3], [8, 1, 22]]);
  const sample = (seed: number) => tidy(() => generate(model, { input_ids: input, max_new_tokens: 12, do_sample: true, temperature: 1.5, top_k: 0, seed }).toArray());
  assert.deepEqual(sample(7), sample(7));
  assert.notDeepEqual(sample(7), sample(8));
  const greedy = tidy(() => generate(model, { input_ids: input, max_new_tokens: 8 }).toArray());
  const topOne = tidy(() => generate(model, { input_ids: input, max_new_tokens: 8, do_sample: true, top_k: 1, seed: 3 }).toArray());
  assert.deepEqual(topOne, greedy);
  input.dispose();
  model.dispose();
});

test("sampled tokens follow the warped distribution (top_p keeps the nucleus only)", () => {
  // A constant model: logits favour tokens 0..3 with probabilities 0.5, 0.3, 0.15, 0.05.
  const probs = [0.5, 0.3, 0.15, 0.05];
  const logits = [...probs.map(Math.log), -1e9, -1e9];
  const constant = {
    forward(inputs: CausalLMInputs): CausalLMOutput {
      const [batch, length] = inputs.input_ids!.shape;
      return { logits: tensor(Array.from({ length: batch }, () => Array.from({ length }, () => logits))) };
    },
  };
  const counts = [0, 0, 0, 0, 0, 0];
  tidy(() => {
    const out = generate(constant, { input_ids: int64(Array.from({ length: 400 }, () => [1])), max_new_tokens: 1, do_sample: true, top_k: 0, top_p: 0.85, seed: 5 });
    for (const t of (out.toArray() as number[][]).map((r) => r[1])) counts[t]++;
  });
  // top_p 0.85 keeps 0.5 + 0.3 + 0.15 (the 0.05 tail is cut), renormalised to 0.526, 0.316, 0.158.
  assert.equal(counts[3] + counts[4] + counts[5], 0, "tokens outside the nucleus are never drawn");
  [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95].forEach((p, t) => assert.ok(Math.abs(counts[t] / 400 - p) < 0.08, `token ${t}: ${counts[t]} / 400 vs ${p}`));
});

test("top-k and top-p filters are transformers' warpers", () => {
  tidy(() => {
    const scores = tensor([[1.0, 3.0, 2.0, 3.0, -1.0]]);
    const k2 = topKFilter(scores, 2).toArray() as number[][];
    assert.deepEqual(k2[0], [-Infinity, 3, -Infinity, 3, -Infinity], "ties with the k-th value are kept");
    const k3 = topKFilter(scores, 3).toArray() as number[][];
    assert.deepEqual(k3[0], [-Infinity, 3, 2, 3, -Infinity]);
    // softmax of log(p) is p: sorted ascending 0.1, 0.2, 0.3, 0.4; cumulative 0.1, 0.3, 0.6, 1.0.
    const p = tensor([[0.2, 0.4, 0.1, 0.3]]).log();
    const kept = (topP: number) => (topPFilter(p, topP).toArray() as number[][])[0].map((v) => v !== -Infinity);
    assert.deepEqual(kept(0.5), [false, true, false, true], "remove cumulative <= 0.5: 0.1, 0.3");
    assert.deepEqual(kept(0.75), [true, true, false, true], "remove cumulative <= 0.25: 0.1");
    assert.deepEqual(kept(0.01), [false, true, false, false], "always keeps the most likely token");
    assert.deepEqual(kept(1), [true, true, true, true]);
  });
});

test("generation keeps memory flat: the same tensor count at every step, nothing left behind", () => {
  const model = tinyModel(41);
  const counts: number[] = [];
  const counting = {
    forward(inputs: CausalLMInputs & Record<string, unknown>) {
      counts.push(liveTensorCount());
      return model.forward(inputs);
    },
  };
  const input = int64([[5, 17, 3], [0, 8, 1]]);
  const mask = int64([[1, 1, 1], [0, 1, 1]]);
  const before = liveTensorCount();
  const out = generate(counting, { input_ids: input, attention_mask: mask, max_new_tokens: 12, do_sample: true, seed: 1, top_p: 0.9 });
  assert.equal(liveTensorCount(), before + 1, "only the returned sequences remain");
  out.dispose();
  const decodeSteps = counts.slice(2);
  assert.ok(decodeSteps.every((c) => c === decodeSteps[0]), `live tensors per step: ${counts.join(", ")}`);
  dispose([input, mask]);
  model.dispose();
});

test("generate checks its arguments", () => {
  const model = tinyModel(43);
  tidy(() => {
    assert.throws(() => generate(model, { input_ids: int64([[1, 2]]), attention_mask: int64([[1, 1, 1]]) }), /attention_mask must be \[1, 2\]/);
    assert.throws(() => generate(model, { input_ids: tensor([1, 2], { dtype: "int64" }) }), /input_ids must be \[batch, seq\]/);
    assert.throws(() => generate(model, { input_ids: int64([[1]]), do_sample: true, temperature: 0 }), /temperature must be > 0/);
  });
  model.dispose();
});

// Positions used by the padded-batch test come from the same rule as generate's.
test("position ids from a left-padded mask are cumsum - 1 with 1 on padding", () => {
  assert.deepEqual(positionsFromMask([[0, 0, 1, 1, 1]]), [[1, 1, 0, 1, 2]]);
});

