// The VLM interface over LLaVA: loading by model_type (and the errors for what is not a VLM), components and
// their widths, image and video token counts, features that equal the model's own, prompts, generation; a family
// registered from outside trains through the run workflow without touching tasks or commands; a task on another
// device than its checkpoint's tensors (the mixed-device path of a CUDA run, here with the meta device).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noGrad, randn, tidy, readSafetensors, type Tensor } from "../../src/index.js";
import {
  loadVlm, generateAnswers, registerArchitecture, registerConfigBuilder, supportedVlmTypes, loadWeights, llavaCheckpointKey, buildLlavaForLoading,
  LlavaVlm, LlavaForConditionalGeneration, parseLlavaConfig, type VlmContext, type PretrainedContext,
} from "../../src/models/index.js";
import { writeTinyLlavaFolder, vocabularyOf } from "../../src/models/llava/tiny_folder.js";
import { makeSyntheticImages, writeSyntheticDataset, SYNTHETIC_QUESTION, syntheticImageLabels } from "../../src/data/synthetic.js";
import { ConfigReader } from "../../src/models/common/config_reader.js";
import { ClassificationTask } from "../../src/tasks/classification.js";
import { trainRun } from "../../src/runs/train.js";
import { predictRun } from "../../src/runs/use.js";

const dir = mkdtempSync(join(tmpdir(), "vlmkit-vlm-"));
const words = vocabularyOf([SYNTHETIC_QUESTION, ...syntheticImageLabels().map((l) => `a ${l}`)]);
const configPath = writeTinyLlavaFolder(join(dir, "tiny"), { words, visionHidden: 24, textHidden: 32, heads: 2 });
const images = makeSyntheticImages(3, { seed: 2 }).map((s) => s.image);

const values = (t: Tensor) => t.toArray() as number[];

test("loadVlm: the family by model_type, frozen, on the device asked; what is not a VLM is an error naming the types", async () => {
  const vlm = await loadVlm({ config: configPath }, { device: "cpu", seed: 1 });
  assert.ok(vlm instanceof LlavaVlm);
  assert.equal(vlm.modelType, "llava");
  assert.equal(vlm.device, "cpu");
  assert.ok(vlm.randomInit);
  assert.ok(vlm.model.parameters().every((p) => !p.requiresGrad), "loaded frozen");
  assert.ok(supportedVlmTypes().includes("llava"));
  vlm.dispose();
  await assert.rejects(loadVlm({ path: "fixtures/qwen2-tied" }, { device: "cpu" }), /model_type "qwen2" is not a vision-language model; vision-language model types: .*llava/);
  const unknown = join(dir, "unknown.json");
  writeFileSync(unknown, JSON.stringify({ model_type: "no-such-vlm" }));
  await assert.rejects(loadVlm({ config: unknown }), /model_type "no-such-vlm" is not supported; supported model types: .*llava/);
  await assert.rejects(loadVlm({}), /exactly one of path .* and config/);
  await assert.rejects(loadVlm({ path: dir }), /no config\.json there/);
});

test("components, token counts, features equal to the model's own, prompts and generation", async () => {
  const vlm = (await loadVlm({ config: configPath }, { device: "cpu", seed: 1 })) as LlavaVlm;
  const model = vlm.model;
  const components = vlm.components();
  assert.deepEqual(components.vision, { paths: ["model.vision_tower"], width: 24 });
  assert.deepEqual(components.projector, { paths: ["model.multi_modal_projector"], width: 32 });
  assert.deepEqual(components.language, { paths: ["model.language_model", "lm_head"], width: 32 });
  // 32x32 after the processor's resize and crop, 8-pixel patches, the class token dropped: 16 tokens an image
  assert.equal(vlm.imageTokenCount({ width: 32, height: 32 }), 16);
  assert.equal(vlm.imageTokenCount({ width: 64, height: 48 }), 16);
  assert.equal(vlm.videoTokenCount([{ width: 32, height: 32 }, { width: 32, height: 32 }, { width: 32, height: 32 }]), 48);
  assert.equal(vlm.expandImagePlaceholders("<image>\nhi", [{ width: 32, height: 32 }]), "<image>".repeat(16) + "\nhi");
  noGrad(() =>
    tidy(() => {
      const pixels = vlm.processImages(images).pixel_values;
      assert.deepEqual(pixels.shape, [3, 3, 32, 32]);
      const projected = vlm.encodeImage(images);
      assert.deepEqual(projected.sequence.shape, [3, 16, 32]);
      assert.deepEqual(projected.grid, [4, 4]);
      assert.deepEqual(values(projected.sequence.flatten()), values(model.getImageFeatures(pixels).flatten()));
      assert.deepEqual(values(projected.pooled.flatten()), values(model.getImageFeatures(pixels).mean(1).flatten()));
      const tower = vlm.encodeImage(images, { stage: "vision" });
      assert.deepEqual(tower.sequence.shape, [3, 17, 24]);
      assert.deepEqual(values(tower.pooled.flatten()), values(model.model.vision_tower.forward({ pixel_values: pixels }).pooler_output!.flatten()));

      const inputs = vlm.encodePrompts([{ images: [images[0]], question: SYNTHETIC_QUESTION }, { images: images.slice(1), question: "a red circle" }]);
      assert.equal(inputs.input_ids.shape[0], 2);
      assert.deepEqual(inputs.pixel_values.shape, [3, 3, 32, 32]);
      const full = model.forward({ ...inputs, output_hidden_states: true });
      assert.deepEqual(values(vlm.hiddenStates(inputs, -1).flatten()), values(full.hidden_states!.at(-1)!.flatten()));
      assert.deepEqual(values(vlm.hiddenStates(inputs, 1).flatten()), values(full.hidden_states![1].flatten()));
      assert.throws(() => vlm.hiddenStates(inputs, 7), /hidden_layer 7 is out of range: the language model has 3 hidden states/);
      assert.deepEqual(values(vlm.forward(inputs).logits!.flatten()), values(full.logits.flatten()));

      const text = vlm.encodeText(["a red circle", "what is in the image ?"]);
      assert.deepEqual(text.sequence.shape.slice(0, 1), [2]);
      assert.deepEqual(text.pooled.shape, [2, 32]);
      // the pooled row is the last real token's state
      const lastReal = (text.attention_mask.toArray() as number[][])[0].lastIndexOf(1);
      assert.deepEqual(values(text.pooled.select(0, 0)), values(text.sequence.select(0, 0).select(0, lastReal)));
    }),
  );
  const answers = generateAnswers(vlm, [{ images: [images[0]], question: SYNTHETIC_QUESTION }], { maxNewTokens: 3 });
  assert.equal(answers.length, 1);
  const ids = vlm.generate(vlm.encodePrompts([{ images: [images[0]], question: SYNTHETIC_QUESTION }], { paddingSide: "left" }), { maxNewTokens: 3 });
  assert.ok(ids[0].length <= 3);
  assert.equal(answers[0], vlm.tokenizer.decode(ids[0], { skipSpecialTokens: true }).trim());
  vlm.dispose();
});

test("checkpoint tensors read on the CPU go to the task's device (the mixed-device path after checkpoints/best on CUDA)", async () => {
  const vlm = await loadVlm({ config: configPath }, { device: "meta", seed: 1 });
  const task = new ClassificationTask(vlm, { labels: ["a", "b"], headHiddenSize: 0 });
  try {
    const checkpoint = new Map<string, Tensor>([
      ["feature_norm.mean", randn([32])],
      ["feature_norm.std", randn([32]).abs().add(1)],
      ["head.out_proj.weight", randn([2, 32])],
      ["head.out_proj.bias", randn([2])],
    ]);
    const names = [...task.checkpointTensors().keys()].filter((n) => n.startsWith("head."));
    assert.deepEqual(names.sort(), ["head.out_proj.bias", "head.out_proj.weight"]);
    task.loadCheckpointTensors(checkpoint);
    for (const t of checkpoint.values()) t.dispose();
    for (const [name, t] of task.checkpointTensors()) assert.equal(t.device, "meta", name);
    // before the fix: "sub: Expected all tensors to be on the same device, but found at least two devices, meta and cpu!"
    const normalized = task.normalize(randn([4, 32], { device: "meta" }));
    assert.equal(normalized.device, "meta");
    assert.deepEqual(task.head.forward(normalized).shape, [4, 2]);
    normalized.dispose();
  } finally {
    task.dispose();
    vlm.dispose();
  }
});

test("a family registered from outside trains and predicts through the run workflow, touching neither tasks nor commands", { timeout: 120_000 }, async () => {
  class OtherFamily extends LlavaVlm {
    override readonly modelType = "other_llava_family" as "llava";
  }
  const build = (config: ConfigReader) => new LlavaForConditionalGeneration(parseLlavaConfig(config));
  const load = ({ dir: folder, config, options }: PretrainedContext) => {
    const model = buildLlavaForLoading(parseLlavaConfig(config));
    loadWeights(model, folder, { dtype: options.dtype, device: options.device, renameKey: llavaCheckpointKey, tiedWeights: model.tiedWeights() });
    return model;
  };
  registerArchitecture("other_llava_family", load, { vlm: (context: VlmContext) => new OtherFamily(context) });
  registerConfigBuilder("other_llava_family", build);
  const folder = join(dir, "other");
  cpSync(join(dir, "tiny"), folder, { recursive: true });
  const config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
  writeFileSync(join(folder, "config.json"), JSON.stringify({ ...config, model_type: "other_llava_family" }));
  const data = writeSyntheticDataset(join(dir, "data"), { trainImages: 24, valImages: 8, trainClips: 0, seed: 4 });
  const summary = await trainRun({
    task: "classification", output_dir: join(dir, "runs", "other"), model: { config: join(folder, "config.json"), device: "cpu" },
    data: { train: data.trainJsonl, val: data.valJsonl, labels: data.labels }, head: { cache_dir: null, hidden_size: 0 }, epochs: 2, batch_size: 8, progress: false,
  }, () => {});
  assert.equal(summary.evaluation!.report!.total, 8);
  const first = JSON.parse(readFileSync(data.valJsonl, "utf8").split("\n")[0]);
  const [prediction] = await predictRun(summary.runDir, [join(data.dir, first.image)], { topK: 2 });
  assert.equal(prediction.predictions!.length, 2);
  // the saved random base says which family it is
  assert.equal(JSON.parse(readFileSync(join(summary.runDir, "model", "config.json"), "utf8")).model_type, "other_llava_family");
  const best = readSafetensors(join(summary.runDir, "checkpoints", "best", "weights.safetensors"));
  assert.ok(best.has("head.out_proj.weight"));
  for (const t of best.values()) t.dispose();
});
