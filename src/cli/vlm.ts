// What the commands share about a vision-language model: loading it (a pretrained folder, or a config with random
// weights), its tokenizer and processor, saving a random-init base beside a run, decoding the media of records, and
// turning images + a question into the model's inputs.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { manualSeed, noGrad, tidy, writeSafetensors, type Tensor } from "../torch/index.js";
import { cuda } from "../torch/cuda.js";
import type { Module } from "../torch/nn/index.js";
// the model zoo: importing it registers every architecture with loadPretrained / buildFromConfig
import { buildFromConfig, loadPretrained, generate, LlavaForConditionalGeneration, LlavaProcessor, readLlavaProcessorFiles } from "../models/index.js";
import { ImageProcessor } from "../data/image_processor.js";
import { Tokenizer } from "../data/tokenizer.js";
import { loadImage, type RgbImage } from "../data/image.js";
import { loadVideo } from "../data/video.js";
import type { LabeledRecord } from "../data/records.js";
import type { RunConfig } from "./config.js";

export interface LoadedVlm {
  model: LlavaForConditionalGeneration;
  tokenizer: Tokenizer;
  processor: LlavaProcessor;
  /** The folder holding config.json, tokenizer and processor files. */
  folder: string;
  /** True when the weights are random (built from a config). */
  randomInit: boolean;
  device: string;
}

/** The device a run uses: model.device, else CUDA when there is one. */
export function runDevice(config: RunConfig): string {
  return config.model?.device ?? (cuda.isAvailable() ? "cuda" : "cpu");
}

/** The tokenizer and LLaVA processor of a model folder. */
export function loadProcessor(folder: string): { tokenizer: Tokenizer; processor: LlavaProcessor } {
  const tokenizer = Tokenizer.fromFolder(folder);
  const files = readLlavaProcessorFiles(folder);
  const imageProcessor = ImageProcessor.fromConfig(files.imageProcessor, {}, files.imageProcessorSource);
  return { tokenizer, processor: new LlavaProcessor(imageProcessor, tokenizer, files.processor) };
}

/**
 * The model a run names: model.path (a pretrained folder) or model.config (random weights, seeded by `seed`).
 * Only LLaVA-layout models are supported by the commands for now.
 */
export async function loadVlm(config: RunConfig, seed = config.seed ?? 42): Promise<LoadedVlm> {
  const source = config.model ?? {};
  if ((source.path === undefined) === (source.config === undefined)) {
    throw new Error("the run needs exactly one of model.path (a pretrained folder, --model) and model.config (a config.json for random weights, --model-config)");
  }
  const device = runDevice(config);
  const dtype = source.dtype ?? "float32";
  let model: Module;
  let folder: string;
  if (source.path !== undefined) {
    folder = resolve(source.path);
    if (!existsSync(join(folder, "config.json"))) throw new Error(`model.path ${folder}: no config.json there (is it a Hugging Face model folder?)`);
    model = await loadPretrained(folder, { device, dtype });
  } else {
    const file = resolve(source.config!);
    if (!existsSync(file)) throw new Error(`model.config ${file}: file not found`);
    folder = dirname(file);
    manualSeed(seed);
    model = buildFromConfig(file, { device, dtype });
  }
  if (!(model instanceof LlavaForConditionalGeneration)) {
    const name = model.constructor.name;
    model.dispose();
    throw new Error(`${folder}: the commands need a LLaVA-style vision-language model (model_type "llava"), got ${name}`);
  }
  const { tokenizer, processor } = loadProcessor(folder);
  return { model, tokenizer, processor, folder, randomInit: source.config !== undefined, device };
}

export const PROCESSOR_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "chat_template.json", "processor_config.json", "preprocessor_config.json", "generation_config.json"];

/**
 * Saves the model's current weights with its config, tokenizer and processor files as a Hugging Face folder
 * (loadPretrained reads it back): how a run keeps a randomly initialised base.
 */
export function saveModelFolder(model: Module, fromFolder: string, toFolder: string): void {
  mkdirSync(toFolder, { recursive: true });
  for (const name of PROCESSOR_FILES) if (existsSync(join(fromFolder, name))) copyFileSync(join(fromFolder, name), join(toFolder, name));
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of model.stateDict()) tensors.set(name, t);
  writeSafetensors(join(toFolder, "model.safetensors"), tensors, { format: "pt" });
}

// ---- media ----

/** The images of a record: its image(s), or numFrames frames of its video (a video file, or a folder of frames). */
export function loadRecordImages(record: Pick<LabeledRecord, "images" | "video" | "source">, numFrames: number): RgbImage[] {
  if (record.images) return record.images.map((path) => loadImage(path));
  if (record.video) return loadVideo(record.video, numFrames);
  throw new Error(`${record.source}: the record has neither images nor a video`);
}

/** A record's media could not be read or decoded: the message names the record (file:line) and the decoder's reason. */
export class MediaError extends Error {
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(reason.includes(source) ? reason : `${source}: ${reason}`);
  }
}

/** Decoded media by record source, so epochs after the first decode nothing. */
export class MediaCache {
  readonly #images = new Map<string, RgbImage[]>();
  constructor(readonly numFrames: number) {}

  get(record: Pick<LabeledRecord, "images" | "video" | "source">): RgbImage[] {
    const key = record.video ?? record.images?.join("\n") ?? record.source;
    let images = this.#images.get(key);
    if (!images) {
      try {
        images = loadRecordImages(record, this.numFrames);
      } catch (error) {
        throw new MediaError(record.source, (error as Error).message);
      }
      this.#images.set(key, images);
    }
    return images;
  }
}

// ---- prompts ----

export const DEFAULT_QUESTION = "What is in the image?";

/** The user turn with one <image> per image (video frames included) before the question, and the assistant's cue. */
export function promptText(tokenizer: Tokenizer, processor: LlavaProcessor, imageCount: number, question: string): string {
  const content = `${processor.imageToken.repeat(imageCount)}\n${question}`;
  return tokenizer.applyChatTemplate([{ role: "user", content }], { addGenerationPrompt: true });
}

/** One prompt: images with a question (one user turn), or images with the messages of a conversation so far. */
export interface PromptItem {
  images: RgbImage[];
  question?: string;
  messages?: { role: string; content: string }[];
}

export interface VlmInputs {
  input_ids: Tensor;
  attention_mask: Tensor;
  pixel_values: Tensor;
}

/** Model inputs for several prompts (padded on the tokenizer's side unless paddingSide says otherwise). */
export function encodePrompts(vlm: Pick<LoadedVlm, "tokenizer" | "processor" | "device">, items: PromptItem[], paddingSide?: "left" | "right"): VlmInputs {
  const texts = items.map((item) =>
    item.messages
      ? vlm.tokenizer.applyChatTemplate(item.messages, { addGenerationPrompt: true })
      : promptText(vlm.tokenizer, vlm.processor, item.images.length, item.question ?? DEFAULT_QUESTION),
  );
  const out = vlm.processor.process({ text: texts, images: items.flatMap((item) => item.images), padding: true, paddingSide, device: vlm.device });
  return { input_ids: out.input_ids, attention_mask: out.attention_mask, pixel_values: out.pixel_values! };
}

/** The hidden state of one decoder layer for the inputs: -1 the last (after the final norm), 0 the embeddings. */
export function hiddenStates(model: LlavaForConditionalGeneration, inputs: VlmInputs, hiddenLayer: number): Tensor {
  return tidy(() => {
    const wantAll = hiddenLayer !== -1;
    const out = model.model.forward({ ...inputs, output_hidden_states: wantAll });
    if (!wantAll) return out.last_hidden_state;
    const states = out.hidden_states!;
    const index = hiddenLayer < 0 ? states.length + hiddenLayer : hiddenLayer;
    if (index < 0 || index >= states.length) throw new Error(`head.hidden_layer ${hiddenLayer} is out of range: the language model has ${states.length} hidden states`);
    return states[index];
  });
}

/** Greedy answers for each prompt (left-padded batch), decoded without special tokens. */
export function generateAnswers(vlm: LoadedVlm, items: PromptItem[], maxNewTokens: number): string[] {
  return noGrad(() =>
    tidy(() => {
      const inputs = encodePrompts(vlm, items, "left");
      const promptLength = inputs.input_ids.shape[1];
      const sequences = generate(vlm.model, {
        input_ids: inputs.input_ids,
        attention_mask: inputs.attention_mask,
        max_new_tokens: maxNewTokens,
        do_sample: false,
        model_inputs: { pixel_values: inputs.pixel_values },
      });
      const rows = sequences.narrow(1, promptLength, sequences.shape[1] - promptLength).toArray() as number[][];
      return rows.map((ids) => vlm.tokenizer.decode(ids, { skipSpecialTokens: true }).trim());
    }),
  );
}
