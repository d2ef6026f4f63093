// The LLaVA processor: image-token expansion as transformers computes it, with stand-in tokenizer / image
// processor, and parity of input_ids with transformers on the fixture (with the real tokenizer and image
// processor, when src/data has them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { zeros, dispose } from "../../src/index.js";
import {
  LlavaProcessor, parseLlavaProcessorConfig, readLlavaProcessorFiles,
  type ProcessorTokenizer, type ProcessorImageProcessor, type RgbImageLike, type TokenizeOptions,
} from "../../src/models/llava/processor.js";
import { assertClose, fixturePath, missingFixture, readGoldens, REPO_ROOT } from "./vision_helpers.js";

/** One token per character, "<image>" = 99, "<pad>" = 0; pads right. */
class CharTokenizer implements ProcessorTokenizer {
  encode(text: string): number[] {
    return text.split(/(<image>)/).flatMap((part) => (part === "<image>" ? [99] : [...part].map((c) => c.charCodeAt(0) % 90 + 1)));
  }
  encodeBatch(texts: string[], options: TokenizeOptions = {}) {
    let rows = texts.map((t) => this.encode(t));
    if (options.truncation && options.maxLength) rows = rows.map((r) => r.slice(0, options.maxLength));
    const longest = Math.max(...rows.map((r) => r.length));
    const pad = (r: number[]) => (options.padding ? [...r, ...new Array<number>(longest - r.length).fill(0)] : r);
    return { input_ids: rows.map(pad), attention_mask: rows.map((r) => pad(r.map(() => 1))) };
  }
}

/** Every image becomes [3, size, size] zeros. */
const squareImages = (size: number): ProcessorImageProcessor => ({
  preprocess: (images: RgbImageLike[]) => ({ pixel_values: zeros([images.length, 3, size, size]) }),
});

const image = (width: number, height: number): RgbImageLike => ({ width, height, data: new Uint8Array(width * height * 3) });

test("llava processor: image tokens per image follow patch size, extra tokens and strategy", () => {
  const make = (strategy: "default" | "full", extra: number) =>
    new LlavaProcessor(squareImages(30), new CharTokenizer(), parseLlavaProcessorConfig({ patch_size: 6, vision_feature_select_strategy: strategy, num_additional_image_tokens: extra }));
  assert.equal(make("default", 1).numImageTokens(30, 30), 25); // llava-1.5: 24x24 patches + CLS - CLS = 576 at 336/14
  assert.equal(make("full", 1).numImageTokens(30, 30), 26);
  assert.equal(make("full", 0).numImageTokens(24, 36), 24);
  assert.equal(make("default", 0).numImageTokens(30, 30), 24);
  assert.equal(new LlavaProcessor(squareImages(336), new CharTokenizer(), parseLlavaProcessorConfig({ patch_size: 14, num_additional_image_tokens: 1 })).numImageTokens(336, 336), 576);
});

test("llava processor: each <image> expands, in order across the batch, and pixel values come along", () => {
  const processor = new LlavaProcessor(squareImages(12), new CharTokenizer(), parseLlavaProcessorConfig({ patch_size: 6, num_additional_image_tokens: 1 }));
  const out = processor.process({ text: ["a<image>b", "<image>cde"], images: [image(20, 20), image(10, 30)], padding: true });
  const rows = out.input_ids.toArray() as number[][];
  // 2x2 patches + 1 - 1 = 4 image tokens each.
  assert.deepEqual(rows[0].filter((id) => id === 99).length, 4);
  assert.deepEqual(rows[0].slice(0, 6), [new CharTokenizer().encode("a")[0], 99, 99, 99, 99, new CharTokenizer().encode("b")[0]]);
  assert.deepEqual(rows[1].slice(0, 4), [99, 99, 99, 99]);
  assert.deepEqual(out.pixel_values!.shape, [2, 3, 12, 12]);
  assert.deepEqual(out.attention_mask.toArray(), [[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]]);
  dispose(out);
  const textOnly = processor.process({ text: "no images" });
  assert.equal(textOnly.pixel_values, undefined);
  dispose(textOnly);
});

test("llava processor: errors name the counts (placeholders vs images, truncated image tokens, ragged rows)", () => {
  const processor = new LlavaProcessor(squareImages(12), new CharTokenizer(), parseLlavaProcessorConfig({ patch_size: 6, num_additional_image_tokens: 1 }));
  assert.throws(() => processor.process({ text: "<image><image>", images: [image(4, 4)] }), /2 <image> placeholder\(s\) but 1 image\(s\)/);
  assert.throws(() => processor.process({ text: "x<image>", images: [image(4, 4)], truncation: true, maxLength: 3 }), /row 0 has 4 image tokens in its text but 2 after tokenization/);
  assert.throws(() => processor.process({ text: ["ab", "abc"] }), /different lengths \(2, 3\); pass padding: true/);
  assert.throws(() => parseLlavaProcessorConfig({}), /"patch_size" is missing/);
  const splitting: ProcessorTokenizer = { encode: () => [1, 2], encodeBatch: () => ({ input_ids: [], attention_mask: [] }) };
  assert.throws(() => new LlavaProcessor(squareImages(12), splitting, parseLlavaProcessorConfig({ patch_size: 6 })), /is 2 tokens \[1,2\].*must be one added token/);
});

// ---- parity with transformers (needs the tokenizer and image processor of src/data) ----

// The compiled test runs from dist/test/models; the modules sit in dist/src/data.
const dataModules = join(REPO_ROOT, "dist", "src", "data");
const haveDataModules = existsSync(join(dataModules, "tokenizer.js")) && existsSync(join(dataModules, "image_processor.js"));

for (const name of ["llava-layer-int", "llava-layer-list"]) {
  const skip = missingFixture(name) || (!haveDataModules && "src/data/tokenizer.ts and src/data/image_processor.ts are not in this build");
  test(`${name}: the processor gives transformers' input_ids (image tokens expanded) and pixel_values`, { skip }, async () => {
    const folder = fixturePath(name);
    // Loaded at run time so this file builds before the tokenizer and image processor are merged.
    const { Tokenizer } = await import(join(dataModules, "tokenizer.js"));
    const { ImageProcessor } = await import(join(dataModules, "image_processor.js"));
    const { loadImage } = await import(join(dataModules, "image.js"));
    const files = readLlavaProcessorFiles(folder);
    const processor = new LlavaProcessor(ImageProcessor.fromConfig(files.imageProcessor, {}, files.imageProcessorSource), Tokenizer.fromFolder(folder), files.processor);
    const goldens = readGoldens(name);
    const meta = goldens.meta as { prompts: string[]; images: string[]; batch_input_ids: number[][]; single_input_ids: number[]; image_token_id: number };
    assert.equal(processor.imageTokenId, meta.image_token_id);
    const images = meta.images.map((file) => loadImage(join(folder, file)));
    const batch = processor.process({ text: meta.prompts, images, padding: true, paddingSide: "right" });
    assert.deepEqual(batch.input_ids.toArray(), meta.batch_input_ids);
    assertClose(batch.attention_mask, goldens.get("inputs.attention_mask"), 0, "attention_mask");
    // The image processor's own tests hold it to transformers; here one uint8 level (1 / 255 / std) is allowed.
    assertClose(batch.pixel_values!, goldens.get("inputs.pixel_values"), 1 / 255 / 0.26, "pixel_values");
    const single = processor.process({ text: meta.prompts[0], images: images.slice(0, 1) });
    assert.deepEqual((single.input_ids.toArray() as number[][])[0], meta.single_input_ids);
    dispose([batch, single]);
    goldens.dispose();
  });
}

