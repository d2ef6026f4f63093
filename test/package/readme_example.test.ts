// The README's model example, on a tiny Qwen2 fixture on the CPU: it must compile and run as written.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadPretrained, Tokenizer, generate, tensor, type Qwen2ForCausalLM } from "vlmkit";

test("README: load a Qwen2 folder, render its chat template, generate", async () => {
  const dir = "fixtures/qwen2-tied";
  const model = await loadPretrained<Qwen2ForCausalLM>(dir, { device: "cpu", dtype: "float32" });
  const tokenizer = Tokenizer.fromFolder(dir);
  const prompt = tokenizer.applyChatTemplate([{ role: "user", content: "Hello!" }], { addGenerationPrompt: true }) as string;
  assert.ok(prompt.endsWith("<|im_start|>assistant\n"), "the generation prompt is appended");
  const ids = tensor([tokenizer.encode(prompt)], { dtype: "int64" });
  const out = generate(model, { input_ids: ids, max_new_tokens: 4 });
  assert.deepEqual(out.shape, [1, ids.shape[1] + 4]);
  assert.equal(typeof tokenizer.decode(out.dataAsNumbers().slice(ids.shape[1]), { skipSpecialTokens: true }), "string");
  out.dispose();
  ids.dispose();
  model.dispose();
});
