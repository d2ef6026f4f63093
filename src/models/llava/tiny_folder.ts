// A tiny LLaVA-shaped model folder for training from scratch: config.json (CLIP vision tower, projector, Llama
// language model), a word-level tokenizer over a given vocabulary with a chat template, and the processor settings.
// No weights: `--model-config <folder>/config.json` builds the model with random weights.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TinyLlavaOptions {
  /** The words the tokenizer knows besides the special tokens (lower-case; punctuation is its own word). */
  words: string[];
  imageSize?: number;
  patchSize?: number;
  visionHidden?: number;
  visionLayers?: number;
  textHidden?: number;
  textLayers?: number;
  heads?: number;
}

const SPECIAL_TOKENS = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", "<image>"] as const;

// The Qwen2 / ChatML layout, without a default system message to keep sequences short.
const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The words of the template and of the synthetic questions and answers, always in the vocabulary. */
export const TEMPLATE_WORDS = ["user", "assistant", "system"];

/** tokenizer.json of a word-level tokenizer: lower-cases, splits words and punctuation, unknown words -> <unk>. */
export function wordLevelTokenizerJson(words: string[]): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  for (const token of [...SPECIAL_TOKENS, ...words]) if (!(token in vocab)) vocab[token] = Object.keys(vocab).length;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content) => ({
      id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: { type: "Lowercase" },
    pre_tokenizer: { type: "Whitespace" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab, unk_token: "<unk>" },
  };
}

/** Splits sentences into the words wordLevelTokenizerJson() expects (lower case, punctuation apart). */
export function vocabularyOf(texts: string[]): string[] {
  const words = new Set<string>();
  for (const text of texts) for (const word of text.toLowerCase().match(/\w+|[^\w\s]+/g) ?? []) words.add(word);
  return [...words].sort();
}

/** The config.json of the tiny model (transformers' LlavaConfig layout). */
export function tinyLlavaConfig(vocabSize: number, options: Omit<TinyLlavaOptions, "words"> = {}): Record<string, unknown> {
  const imageSize = options.imageSize ?? 32;
  const patchSize = options.patchSize ?? 8;
  const visionHidden = options.visionHidden ?? 128;
  const textHidden = options.textHidden ?? 128;
  const heads = options.heads ?? 4;
  const imageTokenId = SPECIAL_TOKENS.indexOf("<image>");
  return {
    architectures: ["LlavaForConditionalGeneration"],
    model_type: "llava",
    image_token_index: imageTokenId,
    image_seq_length: (imageSize / patchSize) ** 2,
    projector_hidden_act: "gelu",
    vision_feature_layer: -1,
    vision_feature_select_strategy: "default",
    tie_word_embeddings: false,
    vision_config: {
      model_type: "clip_vision_model",
      hidden_size: visionHidden,
      intermediate_size: visionHidden * 2,
      num_hidden_layers: options.visionLayers ?? 2,
      num_attention_heads: heads,
      image_size: imageSize,
      patch_size: patchSize,
      projection_dim: visionHidden,
      hidden_act: "quick_gelu",
    },
    text_config: {
      model_type: "llama",
      vocab_size: vocabSize,
      hidden_size: textHidden,
      intermediate_size: textHidden * 2,
      num_hidden_layers: options.textLayers ?? 2,
      num_attention_heads: heads,
      num_key_value_heads: heads,
      max_position_embeddings: 512,
      rms_norm_eps: 1e-6,
      bos_token_id: null,
      eos_token_id: SPECIAL_TOKENS.indexOf("<|im_end|>"),
      pad_token_id: SPECIAL_TOKENS.indexOf("<pad>"),
      tie_word_embeddings: false,
    },
  };
}

/**
 * Writes config.json, tokenizer.json, tokenizer_config.json, chat_template.jinja and processor_config.json to
 * `dir` and returns the path of config.json.
 */
export function writeTinyLlavaFolder(dir: string, options: TinyLlavaOptions): string {
  mkdirSync(dir, { recursive: true });
  const words = [...new Set([...TEMPLATE_WORDS, ...options.words])];
  const tokenizer = wordLevelTokenizerJson(words);
  const vocabSize = Object.keys((tokenizer.model as { vocab: object }).vocab).length;
  const config = tinyLlavaConfig(vocabSize, options);
  const imageSize = options.imageSize ?? 32;
  const patchSize = options.patchSize ?? 8;
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer, null, 2) + "\n");
  writeFileSync(join(dir, "chat_template.jinja"), CHAT_TEMPLATE);
  writeFileSync(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ eos_token: "<|im_end|>", pad_token: "<pad>", unk_token: "<unk>", padding_side: "right", model_max_length: 512, extra_special_tokens: { image_token: "<image>" } }, null, 2) + "\n",
  );
  writeFileSync(
    join(dir, "processor_config.json"),
    JSON.stringify(
      {
        processor_class: "LlavaProcessor",
        image_token: "<image>",
        patch_size: patchSize,
        vision_feature_select_strategy: "default",
        num_additional_image_tokens: 1,
        image_processor: {
          image_processor_type: "CLIPImageProcessor",
          do_resize: true,
          size: { shortest_edge: imageSize },
          resample: 3,
          do_center_crop: true,
          crop_size: { height: imageSize, width: imageSize },
          do_rescale: true,
          rescale_factor: 1 / 255,
          do_normalize: true,
          image_mean: [0.5, 0.5, 0.5],
          image_std: [0.5, 0.5, 0.5],
          do_convert_rgb: true,
        },
      },
      null,
      2,
    ) + "\n",
  );
  return join(dir, "config.json");
}
