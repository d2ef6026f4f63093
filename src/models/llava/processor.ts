// The LLaVA processor (transformers' LlavaProcessor): images through the image processor, and each <image>
// placeholder of the prompt expanded to as many image tokens as the vision tower gives features for that
// image, then tokenized.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { tensor, type Tensor } from "../../torch/index.js";
import { ConfigReader, isJsonObject, type JsonObject } from "../common/config_reader.js";
import { readJsonObject } from "../common/hf_folder.js";
import type { VisionFeatureSelectStrategy } from "./config.js";

/** An 8-bit RGB image (row-major, 3 bytes per pixel), as src/data/image.ts decodes them. */
export interface RgbImageLike {
  width: number;
  height: number;
  data: Uint8Array;
}

/** What the processor needs of a tokenizer (src/data/tokenizer.ts's Tokenizer provides it). */
export interface ProcessorTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  encodeBatch(texts: string[], options?: TokenizeOptions): { input_ids: number[][]; attention_mask: number[][] };
  /** Named special tokens from tokenizer_config.json (extra_special_tokens {"image_token": ...}), if any. */
  readonly namedSpecialTokens?: Record<string, string>;
}

/** What the processor needs of an image processor (src/data/image_processor.ts's ImageProcessor provides it). */
export interface ProcessorImageProcessor {
  preprocess(images: RgbImageLike[], options?: { device?: string }): { pixel_values: Tensor };
}

export interface TokenizeOptions {
  addSpecialTokens?: boolean;
  padding?: "longest" | "max_length" | boolean;
  paddingSide?: "left" | "right";
  truncation?: boolean;
  maxLength?: number;
}

/** The processor's own settings (processor_config.json). */
export interface LlavaProcessorConfig {
  /** The vision tower's patch size; image tokens per image = (height / patch) * (width / patch) + extras. */
  patch_size: number;
  /** "default" drops one token (the class token) per image, as the model does. */
  vision_feature_select_strategy: VisionFeatureSelectStrategy;
  /** Tokens the tower adds besides the patches (1 for CLIP's class token, 0 for SigLIP). */
  num_additional_image_tokens: number;
  image_token: string;
}

export function parseLlavaProcessorConfig(source: ConfigReader | JsonObject, file = "processor_config.json"): LlavaProcessorConfig {
  const c = source instanceof ConfigReader ? source : new ConfigReader(source, file);
  if (!c.has("patch_size")) {
    throw new Error(`${c.file}: "patch_size" is missing; the processor needs the vision tower's patch size to know how many image tokens each image takes (set it to vision_config.patch_size)`);
  }
  return {
    patch_size: c.size("patch_size", 14),
    vision_feature_select_strategy: c.choice("vision_feature_select_strategy", ["default", "full"] as const, "default"),
    num_additional_image_tokens: c.int("num_additional_image_tokens", 0),
    image_token: c.string("image_token", "<image>"),
  };
}

/**
 * The processor settings and the image processor's JSON of a folder. transformers 5 writes both into
 * processor_config.json (the image processor under "image_processor"); older folders keep the image processor
 * in preprocessor_config.json.
 */
export function readLlavaProcessorFiles(dir: string): { processor: LlavaProcessorConfig; imageProcessor: JsonObject; imageProcessorSource: string } {
  const processorPath = join(dir, "processor_config.json");
  const preprocessorPath = join(dir, "preprocessor_config.json");
  if (!existsSync(processorPath)) throw new Error(`${dir} has no processor_config.json: a LLaVA processor needs patch_size and vision_feature_select_strategy from it`);
  const processorJson = readJsonObject(processorPath);
  const processor = parseLlavaProcessorConfig(processorJson, processorPath);
  if (isJsonObject(processorJson.image_processor)) return { processor, imageProcessor: processorJson.image_processor, imageProcessorSource: `${processorPath} (image_processor)` };
  if (existsSync(preprocessorPath)) return { processor, imageProcessor: readJsonObject(preprocessorPath), imageProcessorSource: preprocessorPath };
  throw new Error(`${dir}: no image processor settings (neither processor_config.json's "image_processor" nor preprocessor_config.json)`);
}

export interface LlavaProcessorInputs extends TokenizeOptions {
  /** One prompt or a batch; each <image> is one image, in order across the batch. */
  text: string | string[];
  images?: RgbImageLike[];
  /** Where the tensors go (default cpu). */
  device?: string;
}

export interface LlavaProcessorOutput {
  /** [batch, length] int64, image placeholders expanded. */
  input_ids: Tensor;
  attention_mask: Tensor;
  /** [images, 3, height, width] float32, when images were given. */
  pixel_values?: Tensor;
}

export class LlavaProcessor {
  readonly imageProcessor: ProcessorImageProcessor;
  readonly tokenizer: ProcessorTokenizer;
  readonly config: LlavaProcessorConfig;
  /** The placeholder string (the tokenizer's image_token when it names one, as transformers prefers). */
  readonly imageToken: string;
  readonly imageTokenId: number;

  constructor(imageProcessor: ProcessorImageProcessor, tokenizer: ProcessorTokenizer, config: LlavaProcessorConfig) {
    this.imageProcessor = imageProcessor;
    this.tokenizer = tokenizer;
    this.config = config;
    this.imageToken = tokenizer.namedSpecialTokens?.image_token ?? config.image_token;
    const ids = tokenizer.encode(this.imageToken, { addSpecialTokens: false });
    if (ids.length !== 1) {
      throw new Error(`LlavaProcessor: the image token ${JSON.stringify(this.imageToken)} is ${ids.length} tokens [${ids}] for this tokenizer; it must be one added token (add it to tokenizer.json's added_tokens)`);
    }
    this.imageTokenId = ids[0];
  }

  /** Image tokens for one processed image of this size (transformers' LlavaProcessor.replace_image_token). */
  numImageTokens(height: number, width: number): number {
    const patch = this.config.patch_size;
    const count = Math.floor(height / patch) * Math.floor(width / patch) + this.config.num_additional_image_tokens;
    return this.config.vision_feature_select_strategy === "default" ? count - 1 : count;
  }

  /** The prompts with the k-th <image> (counting across the batch) replaced by imageTokenCounts[k] image tokens. */
  expandImageTokens(texts: string[], imageTokenCounts: number[]): string[] {
    const placeholders = texts.reduce((n, t) => n + t.split(this.imageToken).length - 1, 0);
    if (placeholders !== imageTokenCounts.length) {
      throw new Error(
        `LlavaProcessor: the text has ${placeholders} ${this.imageToken} placeholder(s) but ${imageTokenCounts.length} image(s) were given; ` +
          `put one ${this.imageToken} in the prompt per image`,
      );
    }
    let next = 0;
    return texts.map((text) => {
      const parts = text.split(this.imageToken);
      return parts.reduce((out, part, i) => (i === 0 ? part : out + this.imageToken.repeat(imageTokenCounts[next++]) + part), "");
    });
  }

  /** transformers' processor(images=..., text=..., return_tensors="pt"). */
  process(inputs: LlavaProcessorInputs): LlavaProcessorOutput {
    const texts = Array.isArray(inputs.text) ? inputs.text : [inputs.text];
    let pixelValues: Tensor | undefined;
    let expanded = texts;
    const images = inputs.images ?? [];
    if (images.length > 0) {
      pixelValues = this.imageProcessor.preprocess(images, { device: inputs.device }).pixel_values;
      const [count, , height, width] = pixelValues.shape;
      try {
        expanded = this.expandImageTokens(texts, new Array<number>(count).fill(this.numImageTokens(height, width)));
      } catch (error) {
        pixelValues.dispose();
        throw error;
      }
    }
    const encoded = this.tokenizer.encodeBatch(expanded, inputs);
    const lengths = new Set(encoded.input_ids.map((row) => row.length));
    const problem = lengths.size > 1
      ? `the prompts tokenize to different lengths (${[...lengths].join(", ")}); pass padding: true`
      : this.truncatedImages(expanded, encoded.input_ids);
    if (problem) {
      pixelValues?.dispose();
      throw new Error(`LlavaProcessor: ${problem}`);
    }
    const output: LlavaProcessorOutput = {
      input_ids: tensor(encoded.input_ids, { dtype: "int64", device: inputs.device }),
      attention_mask: tensor(encoded.attention_mask, { dtype: "int64", device: inputs.device }),
    };
    if (pixelValues) output.pixel_values = pixelValues;
    return output;
  }

  /** transformers' _check_special_mm_tokens: every image token of the text must survive tokenization. */
  private truncatedImages(texts: string[], ids: number[][]): string | null {
    for (let row = 0; row < texts.length; row++) {
      const inText = texts[row].split(this.imageToken).length - 1;
      const inIds = ids[row].filter((id) => id === this.imageTokenId).length;
      if (inText !== inIds) {
        return `row ${row} has ${inText} image tokens in its text but ${inIds} after tokenization (truncation cut them?); raise maxLength or turn truncation off`;
      }
    }
    return null;
  }
}
