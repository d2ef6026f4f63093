// The tiny model folder and what the commands build on it: random weights from a config (seeded), a saved base that
// loads back with the same outputs, prompts with one image token per patch, SFT labels on the assistant's tokens
// only, and the sample-cut-inside-the-image error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noGrad, tidy, loadPretrained, buildFromConfig, manualSeed, LlavaForConditionalGeneration, type Tensor } from "../../src/index.js";
import { writeTinyLlavaFolder, vocabularyOf } from "../../src/models/llava/tiny_folder.js";
import { makeSyntheticImages, SYNTHETIC_QUESTION, syntheticImageLabels } from "../../src/data/synthetic.js";
import { saveModelFolder } from "../../src/models/vlm.js";
import { LlavaVlm } from "../../src/models/llava/vlm.js";
import { SftTask } from "../../src/tasks/generation.js";
import type { ConversationSample } from "../../src/tasks/samples.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-tiny-"));
const words = vocabularyOf([SYNTHETIC_QUESTION, ...syntheticImageLabels().map((l) => `a ${l}`)]);
const configPath = writeTinyLlavaFolder(join(dir, "tiny"), { words, visionHidden: 32, textHidden: 32, heads: 2 });
const images = makeSyntheticImages(3, { seed: 1 });

function vlmFor(model: LlavaForConditionalGeneration): LlavaVlm {
  return new LlavaVlm({ model, folder: join(dir, "tiny"), randomInit: true, device: "cpu" });
}

test("buildFromConfig: a LLaVA with random weights, the same for the same seed", () => {
  manualSeed(7);
  const a = buildFromConfig<LlavaForConditionalGeneration>(configPath);
  manualSeed(7);
  const b = buildFromConfig<LlavaForConditionalGeneration>(configPath);
  manualSeed(8);
  const c = buildFromConfig<LlavaForConditionalGeneration>(configPath);
  assert.ok(a instanceof LlavaForConditionalGeneration);
  const name = "model.language_model.layers.0.self_attn.q_proj.weight";
  const value = (m: typeof a) => m.getParameter(name).toArray() as number[][];
  assert.deepEqual(value(a), value(b));
  assert.notDeepEqual(value(a), value(c));
  assert.equal(a.getParameter("model.vision_tower.vision_model.embeddings.patch_embedding.weight").shape.join(","), "32,3,8,8");
  for (const m of [a, b, c]) m.dispose();
  assert.throws(() => buildFromConfig({ model_type: "nothing-like-it" }), /model_type "nothing-like-it" is not a supported language model/);
});

test("a random base saved as a folder loads back with the same logits", async () => {
  manualSeed(3);
  const model = buildFromConfig<LlavaForConditionalGeneration>(configPath);
  saveModelFolder(model, join(dir, "tiny"), join(dir, "saved"));
  const loaded = await loadPretrained<LlavaForConditionalGeneration>(join(dir, "saved"));
  const vlm = vlmFor(model);
  const logits = (m: LlavaForConditionalGeneration) =>
    noGrad(() => tidy(() => m.forward({ ...vlm.encodePrompts(images.map((s) => ({ images: [s.image], question: SYNTHETIC_QUESTION }))) }).logits.toArray() as number[][][]));
  assert.deepEqual(logits(loaded), logits(model));
  model.dispose();
  loaded.dispose();
});

test("prompts: the chat template with one image token per patch, no unknown words", () => {
  manualSeed(0);
  const model = buildFromConfig<LlavaForConditionalGeneration>(configPath);
  const vlm = vlmFor(model);
  const inputs = vlm.encodePrompts([{ images: [images[0].image], question: SYNTHETIC_QUESTION }]);
  const ids = (inputs.input_ids.toArray() as number[][])[0];
  const tokenizer = vlm.tokenizer;
  assert.equal(ids.filter((id) => id === vlm.processor.imageTokenId).length, (32 / 8) ** 2);
  assert.ok(!ids.includes(tokenizer.tokenToId("<unk>")!));
  const text = ids.filter((id) => id !== vlm.processor.imageTokenId).map((id) => tokenizer.idToToken(id));
  assert.deepEqual(text, ["<|im_start|>", "user", "what", "is", "in", "the", "image", "?", "<|im_end|>", "<|im_start|>", "assistant"]);
  assert.deepEqual((inputs.pixel_values as Tensor).shape, [1, 3, 32, 32]);
  model.dispose();
});

test("SFT labels: the assistant's answer and end token only; a cut inside the image tokens is an error or a counted skip", () => {
  manualSeed(0);
  const model = buildFromConfig<LlavaForConditionalGeneration>(configPath);
  const vlm = vlmFor(model);
  const sample: ConversationSample = {
    key: "sft.jsonl:1",
    images: [images[0].image],
    labelIndex: 0,
    messages: [
      { role: "user", content: `<image>\n${SYNTHETIC_QUESTION}` },
      { role: "assistant", content: "a red circle" },
    ],
  };
  const task = new SftTask(vlm, { maxLength: 512, skipTruncated: false });
  const encoded = task.encode(sample)!;
  const tokenizer = vlm.tokenizer;
  const id = (token: string) => tokenizer.tokenToId(token)!;
  // user turn (2 + 16 image tokens + 6 words + end), assistant cue (2), answer (3) + end; no newline tokens
  const expected = [id("<|im_start|>"), id("user"), ...new Array(16).fill(id("<image>")), ...["what", "is", "in", "the", "image", "?"].map(id), id("<|im_end|>"),
    id("<|im_start|>"), id("assistant"), id("a"), id("red"), id("circle"), id("<|im_end|>")];
  assert.deepEqual(encoded.ids, expected);
  const learned = encoded.labels.map((label, i) => (label === -100 ? null : [i, label]));
  assert.deepEqual(learned.filter((x) => x !== null), [[27, id("a")], [28, id("red")], [29, id("circle")], [30, id("<|im_end|>")]]);

  const short = new SftTask(vlm, { maxLength: 10, skipTruncated: false });
  assert.throws(() => short.encode(sample), /sft\.jsonl:1: 31 tokens, and data\.max_length 10 would cut inside its image tokens.*generation\.skip_truncated/);
  const skipping = new SftTask(vlm, { maxLength: 10, skipTruncated: true });
  assert.equal(skipping.encode(sample), null);
  assert.deepEqual([...skipping.skipped], ["sft.jsonl:1"]);
  // a cut after the image tokens keeps the sample, shortened
  const cut = new SftTask(vlm, { maxLength: 29, skipTruncated: false }).encode(sample)!;
  assert.equal(cut.ids.length, 29);
  assert.deepEqual(cut.labels.slice(27), [id("a"), id("red")]);
  model.dispose();
});
