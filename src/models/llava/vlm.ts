// LLaVA behind the VLM interface: its processor (CLIP/SigLIP image processor + <image> expansion), tokenizer and chat
// template, and the vision tower / projector / language model as components.
import { noGrad, tensor, tidy, type Tensor } from "../../torch/index.js";
import { ImageProcessor } from "../../data/image_processor.js";
import { Tokenizer } from "../../data/tokenizer.js";
import type { RgbImage } from "../../data/image.js";
import { poolHidden } from "../common/pooling.js";
import {
  generateNewTokens, pickHiddenState, saveModelFolder,
  type ImageEncoding, type ImageSize, type TextEncoding, type VisionLanguageModel, type VlmComponent, type VlmComponentName,
  type VlmContext, type VlmForwardOutput, type VlmGenerateOptions, type VlmInputs, type VlmPrompt,
} from "../vlm.js";
import { LlavaForConditionalGeneration } from "./model.js";
import { LlavaProcessor, readLlavaProcessorFiles } from "./processor.js";

/** The tokenizer and LLaVA processor of a model folder. */
export function loadLlavaProcessor(folder: string): { tokenizer: Tokenizer; processor: LlavaProcessor } {
  const tokenizer = Tokenizer.fromFolder(folder);
  const files = readLlavaProcessorFiles(folder);
  const imageProcessor = ImageProcessor.fromConfig(files.imageProcessor, {}, files.imageProcessorSource);
  return { tokenizer, processor: new LlavaProcessor(imageProcessor, tokenizer, files.processor) };
}

export class LlavaVlm implements VisionLanguageModel {
  readonly modelType = "llava";
  readonly model: LlavaForConditionalGeneration;
  readonly tokenizer: Tokenizer;
  readonly processor: LlavaProcessor;
  readonly imageProcessor: ImageProcessor;
  readonly folder: string;
  readonly randomInit: boolean;
  readonly device: string;
  readonly imagePlaceholder: string;
  readonly imageTokenId: number;

  constructor(context: VlmContext) {
    if (!(context.model instanceof LlavaForConditionalGeneration)) {
      throw new Error(`${context.folder}: model_type "llava" built a ${context.model.constructor.name}, not a LlavaForConditionalGeneration`);
    }
    this.model = context.model;
    this.folder = context.folder;
    this.randomInit = context.randomInit;
    this.device = context.device;
    const { tokenizer, processor } = loadLlavaProcessor(context.folder);
    this.tokenizer = tokenizer;
    this.processor = processor;
    this.imageProcessor = processor.imageProcessor as ImageProcessor;
    this.imagePlaceholder = processor.imageToken;
    this.imageTokenId = processor.imageTokenId;
  }

  components(): Record<VlmComponentName, VlmComponent> {
    const config = this.model.config;
    const featureLayers = Array.isArray(config.vision_feature_layer) ? config.vision_feature_layer.length : 1;
    const textHidden = this.model.getInputEmbeddings().embeddingDim;
    return {
      vision: { paths: ["model.vision_tower"], width: config.vision_config.hidden_size * featureLayers },
      projector: { paths: ["model.multi_modal_projector"], width: textHidden },
      language: { paths: ["model.language_model", "lm_head"], width: textHidden },
    };
  }

  imageTokenCount(image: ImageSize): number {
    const size = this.imageProcessor.outputSize(image.width, image.height);
    return this.processor.numImageTokens(size.height, size.width);
  }

  /** LLaVA sees a video as its frames, one image each. */
  videoTokenCount(frames: ImageSize[]): number {
    return frames.reduce((n, frame) => n + this.imageTokenCount(frame), 0);
  }

  expandImagePlaceholders(text: string, images: ImageSize[]): string {
    return this.processor.expandImageTokens([text], images.map((image) => this.imageTokenCount(image)))[0];
  }

  processImages(images: RgbImage[]): Record<string, Tensor> {
    return { pixel_values: this.imageProcessor.preprocess(images, { device: this.device }).pixel_values };
  }

  promptText(imageCount: number, question: string): string {
    const content = `${this.imagePlaceholder.repeat(imageCount)}\n${question}`;
    return this.tokenizer.applyChatTemplate([{ role: "user", content }], { addGenerationPrompt: true });
  }

  encodePrompts(prompts: VlmPrompt[], options: { paddingSide?: "left" | "right" } = {}): VlmInputs {
    const texts = prompts.map((prompt) =>
      prompt.messages
        ? this.tokenizer.applyChatTemplate(prompt.messages, { addGenerationPrompt: true })
        : this.promptText(prompt.images.length, prompt.question ?? ""),
    );
    const images = prompts.flatMap((prompt) => prompt.images);
    const out = this.processor.process({ text: texts, images, padding: true, paddingSide: options.paddingSide, device: this.device });
    const inputs: VlmInputs = { input_ids: out.input_ids, attention_mask: out.attention_mask };
    if (out.pixel_values) inputs.pixel_values = out.pixel_values;
    return inputs;
  }

  forward(inputs: VlmInputs & { labels?: Tensor; output_hidden_states?: boolean }): VlmForwardOutput {
    return this.model.forward(inputs);
  }

  hiddenStates(inputs: VlmInputs, layer: number): Tensor {
    return tidy(() => {
      // The bare LlavaModel: no LM head, so no [batch, length, vocab] logits to compute and drop.
      const wantAll = layer !== -1;
      const out = this.model.model.forward({ ...inputs, output_hidden_states: wantAll });
      return wantAll ? pickHiddenState(out.hidden_states!, layer) : out.last_hidden_state;
    });
  }

  encodeImage(images: RgbImage[], options: { stage?: "vision" | "projected" } = {}): ImageEncoding {
    return tidy(() => {
      const { pixel_values } = this.processImages(images);
      const llava = this.model.model;
      if ((options.stage ?? "projected") === "projected") {
        const sequence = llava.getImageFeatures(pixel_values);
        return { sequence, pooled: sequence.mean(1), grid: patchGrid(sequence.shape[1]) };
      }
      const tower = llava.vision_tower.forward({ pixel_values });
      const sequence = tower.last_hidden_state;
      const patches = this.model.config.vision_feature_select_strategy === "default" ? sequence.shape[1] - 1 : sequence.shape[1];
      return { sequence, pooled: tower.pooler_output ?? sequence.mean(1), grid: patchGrid(patches) };
    });
  }

  encodeText(texts: string[]): TextEncoding {
    return tidy(() => {
      const encoded = this.tokenizer.encodeBatch(texts, { padding: true, paddingSide: "right" });
      const inputs = {
        input_ids: tensor(encoded.input_ids, { dtype: "int64", device: this.device }),
        attention_mask: tensor(encoded.attention_mask, { dtype: "int64", device: this.device }),
      };
      const sequence = this.model.model.forward(inputs).last_hidden_state;
      return { sequence, attention_mask: inputs.attention_mask, pooled: poolHidden(sequence, inputs.attention_mask, "last") };
    });
  }

  generate(inputs: VlmInputs, options: VlmGenerateOptions = {}): number[][] {
    return generateNewTokens(this.model, this.tokenizer, inputs, options);
  }

  processorSettings(): Record<string, unknown> {
    return { image: { config: this.imageProcessor.config, backend: this.imageProcessor.backend }, llava: this.processor.config };
  }

  saveFolder(dir: string): void {
    noGrad(() => saveModelFolder(this.model, this.folder, dir));
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Rows and columns of a square patch grid of this many tokens, or undefined when it is not square. */
function patchGrid(tokens: number): [number, number] | undefined {
  const side = Math.round(Math.sqrt(tokens));
  return side * side === tokens ? [side, side] : undefined;
}
