// Bad model configs are refused before anything is allocated, naming the keys: sizes that cannot fit in
// memory (including transformers' large defaults for absent sections), absurd or null sizes, heads that do
// not divide hidden_size, and a LLaVA image token outside the vocabulary.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildFromConfig, loadPretrained, parseLlamaConfig, parseQwen2Config, parseCLIPConfig, parseSiglipConfig, parseLlavaConfig, tinyLlavaConfig, cuda,
} from "../../src/index.js";

const GB = 1e9;
const tinyLlama = { model_type: "llama", vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4 };
const tinyQwen2 = { ...tinyLlama, model_type: "qwen2", num_key_value_heads: 2 };
const tinyClip = {
  model_type: "clip",
  text_config: { vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, max_position_embeddings: 16 },
  vision_config: { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 4, image_size: 32, patch_size: 8 },
};
const tinySiglip = { ...tinyClip, model_type: "siglip" };

test("a LLaVA config without text_config is refused as transformers' 7B Llama, naming text_config", () => {
  const { text_config: _dropped, ...config } = tinyLlavaConfig(40);
  // 32000-token vocab by default: the tiny config's image token (a low id) stays inside it
  assert.throws(
    () => buildFromConfig(config, { memoryLimit: 8 * GB }),
    (e: Error) =>
      /about 6\.\dB parameters, 2\d GB in float32/.test(e.message) &&
      /no text_config/.test(e.message) &&
      /text_config\.num_hidden_layers=32 \(absent: transformers' default\)/.test(e.message) &&
      /7B Llama/.test(e.message),
  );
});

test("num_hidden_layers: 1e7 is refused by key, not by a fatal out-of-memory", () => {
  for (const [config, key] of [
    [{ ...tinyLlama, num_hidden_layers: 1e7 }, /"num_hidden_layers" must be a positive integer of at most 10000, got number 10000000/],
    [{ ...tinyQwen2, num_hidden_layers: 1e7 }, /"num_hidden_layers" must be a positive integer of at most 10000/],
    [{ ...tinyClip, vision_config: { ...tinyClip.vision_config, num_hidden_layers: 1e7 } }, /"vision_config\.num_hidden_layers" must be/],
    [{ ...tinySiglip, text_config: { ...tinySiglip.text_config, num_hidden_layers: 1e7 } }, /"text_config\.num_hidden_layers" must be/],
  ] as const) {
    assert.throws(() => buildFromConfig(config as Record<string, unknown>), key);
  }
});

test("huge vocab_size / hidden_size are refused before allocation, naming the keys and the memory", () => {
  assert.throws(() => buildFromConfig({ ...tinyLlama, vocab_size: 1e13 }), /"vocab_size" must be a positive integer of at most 2147483647/);
  // Within int32 but far beyond memory: the size check names the part and its keys
  assert.throws(
    () => buildFromConfig({ ...tinyLlama, vocab_size: 2_000_000_000 }, { memoryLimit: 8 * GB }),
    /about 128\.0B parameters, 512 GB in float32, more than the 8\.0 GB memory limit; the largest part is the token embeddings .* from vocab_size=2000000000, hidden_size=32/,
  );
  assert.throws(
    () => buildFromConfig({ ...tinyQwen2, hidden_size: 1_048_576, num_attention_heads: 4 }, { memoryLimit: 8 * GB }),
    /decoder layers .*num_hidden_layers=2, hidden_size=1048576, intermediate_size=64/,
  );
  assert.throws(
    () => buildFromConfig({ ...tinyClip, text_config: { ...tinyClip.text_config, vocab_size: 1_000_000_000 } }, { memoryLimit: 8 * GB }),
    /text_config token embeddings .*text_config\.vocab_size=1000000000/,
  );
  assert.throws(
    () => buildFromConfig({ ...tinySiglip, vision_config: { ...tinySiglip.vision_config, hidden_size: 65536, num_attention_heads: 4 } }, { memoryLimit: 8 * GB }),
    /vision_config encoder layers .*vision_config\.hidden_size=65536/,
  );
  // The same configs at a size that fits still build
  buildFromConfig(tinyLlama).dispose();
});

test("a config for random weights is checked in float32, the dtype it is built in before any move", () => {
  const config = { ...tinyLlama, vocab_size: 40_000_000, hidden_size: 32 }; // 2 x 1.28B params: 10.2 GB in fp32, 5.1 in bf16
  assert.throws(() => buildFromConfig(config, { memoryLimit: 8 * GB, dtype: "bfloat16" }), /about 2\.6B parameters, 10 GB in float32/);
});

test("hidden_size: null is an error naming the key, not a silent 4096", () => {
  for (const [parse, config, key] of [
    [parseLlamaConfig, { ...tinyLlama, hidden_size: null }, "hidden_size"],
    [parseQwen2Config, { ...tinyQwen2, hidden_size: null }, "hidden_size"],
    [parseCLIPConfig, { ...tinyClip, vision_config: { ...tinyClip.vision_config, hidden_size: null } }, "vision_config.hidden_size"],
    [parseSiglipConfig, { ...tinySiglip, text_config: { ...tinySiglip.text_config, hidden_size: null } }, "text_config.hidden_size"],
    [parseLlavaConfig, { ...tinyLlavaConfig(40), text_config: { ...(tinyLlavaConfig(40).text_config as object), vocab_size: null } }, "text_config.vocab_size"],
  ] as const) {
    const parsed = () => (parse as (c: Record<string, unknown>) => unknown)(config as Record<string, unknown>);
    if (parse === parseLlavaConfig) {
      // LLaVA builds its language model lazily: the null is caught when the text model is built
      assert.throws(() => buildFromConfig(config as Record<string, unknown>), new RegExp(`"${key.replace(".", "\\.")}" must be a positive integer \\(null is not a size`));
    } else {
      assert.throws(parsed, new RegExp(`"${key.replace(".", "\\.")}" must be a positive integer \\(null is not a size`));
    }
  }
  // Keys transformers derives when None keep doing so
  assert.equal(parseLlamaConfig({ ...tinyLlama, head_dim: null, num_key_value_heads: null }).head_dim, 8);
  assert.equal(parseQwen2Config({ ...tinyQwen2, num_key_value_heads: null }).num_key_value_heads, 4);
});

test("hidden_size not divisible by num_attention_heads (no head_dim) names both keys", () => {
  assert.throws(() => parseLlamaConfig({ ...tinyLlama, hidden_size: 30 }), /hidden_size \(30\) must be divisible by num_attention_heads \(4\)/);
  assert.equal(parseLlamaConfig({ ...tinyLlama, hidden_size: 30, head_dim: 8 }).head_dim, 8, "explicit head_dim is allowed");
  assert.throws(() => parseQwen2Config({ ...tinyQwen2, hidden_size: 30 }), /hidden_size \(30\) must be divisible by num_attention_heads \(4\)/);
  assert.throws(() => parseCLIPConfig({ ...tinyClip, text_config: { ...tinyClip.text_config, num_attention_heads: 5 } }), /text_config\.hidden_size \(32\) must be divisible by text_config\.num_attention_heads \(5\)/);
  assert.throws(() => parseSiglipConfig({ ...tinySiglip, vision_config: { ...tinySiglip.vision_config, num_attention_heads: 3 } }), /vision_config\.hidden_size \(32\) must be divisible by vision_config\.num_attention_heads \(3\)/);
  assert.throws(() => buildFromConfig({ ...tinyLlavaConfig(40), text_config: { ...(tinyLlavaConfig(40).text_config as object), hidden_size: 130 } }), /text_config\.hidden_size \(130\) must be divisible by text_config\.num_attention_heads \(4\)/);
});

test("a LLaVA image_token_index outside the text vocabulary is refused at parse time", () => {
  const config = tinyLlavaConfig(40);
  assert.throws(() => parseLlavaConfig({ ...config, image_token_index: 40 }), /image_token_index \(40\) is outside the language model's vocabulary \(text_config\.vocab_size 40\)/);
  assert.throws(() => parseLlavaConfig({ ...config, image_token_index: -1 }), /image_token_index \(-1\) is outside/);
  const { text_config: text } = config as { text_config: Record<string, unknown> };
  const { vocab_size: _v, ...noVocab } = text;
  assert.throws(() => parseLlavaConfig({ ...config, text_config: noVocab, image_token_index: 32000 }), /text_config\.vocab_size 32000, transformers' default/);
  assert.equal(parseLlavaConfig({ ...config, image_token_index: 39 }).image_token_id, 39);
});

test("on CUDA the limit is the device's memory (torch.cuda.get_device_properties().total_memory)", { skip: !cuda.isAvailable() && "no CUDA device" }, async () => {
  const total = cuda.totalMemory(0);
  assert.ok(total > 1 * GB, `device memory ${total}`);
  // a folder with a config alone: refused before any weight is read, when bf16 weights exceed the device
  const folder = mkdtempSync(join(tmpdir(), "vlmkit-too-big-"));
  const hidden = 4 * Math.ceil(total / 1e6 / 4);
  writeFileSync(join(folder, "config.json"), JSON.stringify({ ...tinyLlama, vocab_size: 1_000_000, hidden_size: hidden, tie_word_embeddings: true }));
  await assert.rejects(loadPretrained(folder, { device: "cuda:0", dtype: "bfloat16" }), new RegExp(`more than the ${(total / GB).toFixed(total >= 1e10 ? 0 : 1)} GB of cuda:0.s memory`));
});
