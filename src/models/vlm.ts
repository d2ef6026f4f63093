// The VLM interface: what tasks, runs and servers see of a vision-language model, whatever its family. A family
// implements it in src/models/<arch>/vlm.ts and registers the factory with its architecture (registerArchitecture's
// `vlm` option); loadVlm() picks the family by config.json's model_type, so adding a family touches neither the
// tasks nor the commands. The model tree itself stays the Hugging Face one (vlm.model), for adapters and weights.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { manualSeed, noGrad, tidy, writeSafetensors, type DType, type Tensor } from "../torch/index.js";
import { cuda } from "../torch/cuda.js";
import type { Module } from "../torch/nn/index.js";
import type { RgbImage } from "../data/image.js";
import type { Tokenizer } from "../data/tokenizer.js";
import type { ChatMessage } from "../data/conversations.js";
import { buildFromConfig, loadPretrained, vlmFactoryOf, supportedVlmTypes } from "./auto.js";
import { generate } from "./generation.js";

export type { ChatMessage } from "../data/conversations.js";

/** The width and size of an image as the processor will see it. */
export interface ImageSize {
  width: number;
  height: number;
}

/** One prompt: images (a video's frames) with a question as one user turn, or with the messages of a conversation so far. */
export interface VlmPrompt {
  images: RgbImage[];
  question?: string;
  messages?: ChatMessage[];
}

/** Model inputs with Hugging Face's names: input_ids, attention_mask and the family's media tensors (pixel_values, ...). */
export interface VlmInputs {
  input_ids: Tensor;
  attention_mask: Tensor;
  [name: string]: Tensor;
}

export interface VlmForwardOutput {
  /** [batch, length, vocab], unless asked not to compute them. */
  logits?: Tensor;
  /** Mean next-token loss over labels != -100, when labels were given. */
  loss?: Tensor;
  last_hidden_state?: Tensor;
  /** [embeddings, layer 1, ..., layer n] with output_hidden_states. */
  hidden_states?: Tensor[];
}

/** One component of the model: where it lives in the module tree and how wide its output features are. */
export interface VlmComponent {
  /** Module paths (Hugging Face names) of the component. */
  paths: string[];
  /** Width of the features it outputs. */
  width: number;
}

export type VlmComponentName = "vision" | "projector" | "language";

/** Vision features of images: a token sequence per image, pooled, and the patch grid when the tokens form one. */
export interface ImageEncoding {
  /** [images, tokens, width]. */
  sequence: Tensor;
  /** [images, width]. */
  pooled: Tensor;
  /** Rows and columns of patch tokens, when sequence is a grid (row-major). */
  grid?: [number, number];
}

/** Text features from the language model. */
export interface TextEncoding {
  /** [batch, length, hidden]. */
  sequence: Tensor;
  attention_mask: Tensor;
  /** [batch, hidden]: the last non-padding token's state. */
  pooled: Tensor;
}

export interface VlmGenerateOptions {
  maxNewTokens?: number;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stopStrings?: string[];
}

/** The interface every vision-language family implements. */
export interface VisionLanguageModel {
  /** config.json's model_type ("llava", ...). */
  readonly modelType: string;
  /** The model tree with Hugging Face's module names: adapters wrap its layers, checkpoints hold its parameters. */
  readonly model: Module;
  readonly tokenizer: Tokenizer;
  /** The folder holding config.json, the tokenizer and the processor files. */
  readonly folder: string;
  /** True when the weights are random (built from a config, not loaded). */
  readonly randomInit: boolean;
  readonly device: string;
  /** The text that stands for one image in a prompt or conversation ("<image>"), and its token id once expanded. */
  readonly imagePlaceholder: string;
  readonly imageTokenId: number;

  /** The vision tower, projector and language model: module paths and output widths. */
  components(): Record<VlmComponentName, VlmComponent>;
  /** How many tokens the language model sees for an image of this size. */
  imageTokenCount(image: ImageSize): number;
  /** How many tokens a video of these frames costs. */
  videoTokenCount(frames: ImageSize[]): number;
  /** The text with its k-th image placeholder expanded to the tokens of images[k]. */
  expandImagePlaceholders(text: string, images: ImageSize[]): string;
  /** The family's media inputs for images, in order (pixel_values, ...), on the model's device. */
  processImages(images: RgbImage[]): Record<string, Tensor>;
  /** Tokenized prompts with their images (chat template applied, placeholders expanded), padded on paddingSide. */
  encodePrompts(prompts: VlmPrompt[], options?: { paddingSide?: "left" | "right" }): VlmInputs;
  /** The prompt text for one user turn of imageCount images and a question, with the assistant's cue. */
  promptText(imageCount: number, question: string): string;
  forward(inputs: VlmInputs & { labels?: Tensor; output_hidden_states?: boolean }): VlmForwardOutput;
  /** One decoder layer's hidden states [batch, length, hidden]: -1 the last (after the final norm), 0 the embeddings. */
  hiddenStates(inputs: VlmInputs, layer: number): Tensor;
  /** Vision features of images: "vision" the tower's output, "projected" (default) in the language model's space. */
  encodeImage(images: RgbImage[], options?: { stage?: "vision" | "projected" }): ImageEncoding;
  /** Language-model features of texts (no images). */
  encodeText(texts: string[]): TextEncoding;
  /** New token ids per prompt (prompt and padding excluded). */
  generate(inputs: VlmInputs, options?: VlmGenerateOptions): number[][];
  /** The processor settings the inputs depend on (for cache keys). */
  processorSettings(): Record<string, unknown>;
  /** Saves the current weights with the folder's config, tokenizer and processor files as a Hugging Face folder. */
  saveFolder(dir: string): void;
  /** Frees the weights. */
  dispose(): void;
}

// ---- loading ----

export interface VlmSource {
  /** A Hugging Face model folder. */
  path?: string;
  /** A config.json to build the model from with random weights; tokenizer and processor files come from its folder. */
  config?: string;
}

export interface LoadVlmOptions {
  /** Default: cuda when there is one, else cpu. */
  device?: string;
  /** Weight dtype (default float32). */
  dtype?: Extract<DType, "float32" | "bfloat16" | "float16">;
  /** Seeds random weights built from a config (default 42). */
  seed?: number;
}

/** What a family's factory gets to build its VisionLanguageModel. */
export interface VlmContext {
  model: Module;
  folder: string;
  randomInit: boolean;
  device: string;
}

export type VlmFactory = (context: VlmContext) => VisionLanguageModel;

export const defaultDevice = (): string => (cuda.isAvailable() ? "cuda" : "cpu");

/**
 * Loads a vision-language model of any registered family: a Hugging Face folder (path), or random weights from a
 * config.json (config), every parameter frozen (adaptModel unfreezes what a plan trains). An unsupported model_type
 * lists the supported ones. Families register when the model zoo
 * (src/models/index.ts, which the package root imports) is imported.
 *
 *   const vlm = await loadVlm({ path: "models/llava-1.5-7b-hf" }, { dtype: "bfloat16" });
 */
export async function loadVlm(source: VlmSource | string, options: LoadVlmOptions = {}): Promise<VisionLanguageModel> {
  const { path, config } = typeof source === "string" ? { path: source, config: undefined } : source;
  if ((path === undefined) === (config === undefined)) {
    throw new Error("loadVlm needs exactly one of path (a pretrained folder, --model) and config (a config.json for random weights, --model-config)");
  }
  const device = options.device ?? defaultDevice();
  const dtype = options.dtype ?? "float32";
  let folder: string;
  let configFile: string;
  if (path !== undefined) {
    folder = resolve(path);
    configFile = join(folder, "config.json");
    if (!existsSync(configFile)) throw new Error(`model.path ${folder}: no config.json there (is it a Hugging Face model folder?)`);
  } else {
    configFile = resolve(config!);
    if (!existsSync(configFile)) throw new Error(`model.config ${configFile}: file not found`);
    folder = dirname(configFile);
  }
  const factory = vlmFactoryOf(configFile);
  if (!factory.vlm) {
    throw new Error(`${configFile}: model_type "${factory.modelType}" is not a vision-language model; vision-language model types: ${supportedVlmTypes().join(", ")}`);
  }
  let model: Module;
  if (path !== undefined) {
    model = await loadPretrained(folder, { device, dtype });
  } else {
    manualSeed(options.seed ?? 42);
    model = buildFromConfig(configFile, { device, dtype });
  }
  // frozen until an adaptation plan (adaptModel) says what trains
  model.freeze();
  try {
    return factory.vlm({ model, folder, randomInit: path === undefined, device });
  } catch (error) {
    model.dispose();
    throw error;
  }
}

// ---- shared by the families ----

/** Hugging Face files a model folder keeps beside its weights. */
export const PROCESSOR_FILES = [
  "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json",
  "processor_config.json", "preprocessor_config.json", "generation_config.json",
];

/** Writes the model's weights with the source folder's config, tokenizer and processor files (loadPretrained reads it back). */
export function saveModelFolder(model: Module, fromFolder: string, toFolder: string): void {
  mkdirSync(toFolder, { recursive: true });
  for (const name of PROCESSOR_FILES) if (existsSync(join(fromFolder, name))) copyFileSync(join(fromFolder, name), join(toFolder, name));
  writeSafetensors(join(toFolder, "model.safetensors"), new Map(model.stateDict()), { format: "pt" });
}

/** The default question of classification prompts. */
export const DEFAULT_QUESTION = "What is in the image?";

/** One hidden state from a forward's list: -1 the last, 0 the embeddings; out of range is an error naming the count. */
export function pickHiddenState(states: Tensor[], layer: number): Tensor {
  const index = layer < 0 ? states.length + layer : layer;
  if (index < 0 || index >= states.length) throw new Error(`head.hidden_layer ${layer} is out of range: the language model has ${states.length} hidden states`);
  return states[index];
}

/** Greedy (or sampled) decoding of a generative model from prompt inputs; the media tensors go to the first forward only. */
export function generateNewTokens(
  model: Parameters<typeof generate>[0], tokenizer: Tokenizer, inputs: VlmInputs, options: VlmGenerateOptions = {},
): number[][] {
  return noGrad(() =>
    tidy(() => {
      const { input_ids, attention_mask, ...media } = inputs;
      const promptLength = input_ids.shape[1];
      const sequences = generate(model, {
        input_ids,
        attention_mask,
        max_new_tokens: options.maxNewTokens,
        do_sample: options.doSample ?? false,
        temperature: options.temperature,
        top_k: options.topK,
        top_p: options.topP,
        seed: options.seed,
        stop_strings: options.stopStrings,
        tokenizer: options.stopStrings ? tokenizer : undefined,
        model_inputs: media,
      });
      return sequences.narrow(1, promptLength, sequences.shape[1] - promptLength).toArray() as number[][];
    }),
  );
}

/** Answers to prompts (left-padded batch), decoded without special tokens. */
export function generateAnswers(vlm: VisionLanguageModel, prompts: VlmPrompt[], options: VlmGenerateOptions = {}): string[] {
  const rows = noGrad(() => tidy(() => vlm.generate(vlm.encodePrompts(prompts, { paddingSide: "left" }), options)));
  return rows.map((ids) => vlm.tokenizer.decode(ids, { skipSpecialTokens: true }).trim());
}

/** The module paths of each component, as adaptModel() takes them (its ComponentPrefixes). */
export function componentPrefixesOf(vlm: VisionLanguageModel): Record<VlmComponentName, string[]> {
  const components = vlm.components();
  return { vision: components.vision.paths, projector: components.projector.paths, language: components.language.paths };
}
