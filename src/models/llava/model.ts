// LLaVA (Liu et al. 2023) as transformers 5 lays it out: LlavaForConditionalGeneration = { model: LlavaModel
// { vision_tower, multi_modal_projector, language_model }, lm_head }. Image features from chosen layers of
// the vision tower go through a two-layer projector and replace the image placeholder tokens' embeddings
// before the language model runs. Property paths equal transformers 5's weight names
// (model.language_model.layers.0.self_attn.q_proj.weight); older checkpoints are renamed in index.ts.
import { Tensor, tidy, noGrad, full, F } from "../../torch/index.js";
import { Module, Linear, Embedding, skipRandomInit, activation, type ActivationModule } from "../../torch/nn/index.js";
import { buildCausalLM } from "../auto.js";
import { ConfigReader } from "../common/config_reader.js";
import { causalLMHead, type CausalLMInputs, type CausalLMOutput, type DecoderOutput } from "../common/outputs.js";
import type { KVCache } from "../common/kv_cache.js";
import { CLIPVisionModel, type BaseModelOutputWithPooling } from "../clip/model.js";
import { SiglipVisionModel } from "../siglip/model.js";
import type { CLIPVisionConfig } from "../clip/config.js";
import type { SiglipVisionConfig } from "../siglip/config.js";
import type { LlavaConfig, LlavaVisionConfig, VisionFeatureSelectStrategy } from "./config.js";

/** A vision tower: CLIPVisionModel or SiglipVisionModel. */
export type VisionTower = CLIPVisionModel | SiglipVisionModel;

/** The decoder without its head (LlamaModel, Qwen2Model, ...): what language_model is. */
export interface DecoderBackbone extends Module {
  embed_tokens: Embedding;
  forward(inputs: {
    inputs_embeds: Tensor;
    attention_mask?: Tensor | null;
    position_ids?: Tensor;
    past_key_values?: KVCache | null;
    use_cache?: boolean;
    output_hidden_states?: boolean;
  }): DecoderOutput;
}

export function buildVisionTower(config: LlavaVisionConfig): VisionTower {
  return config.model_type === "siglip_vision_model"
    ? new SiglipVisionModel(config as SiglipVisionConfig)
    : new CLIPVisionModel(config as CLIPVisionConfig);
}

/** linear_1 -> activation -> linear_2, from the (concatenated) vision features to the text hidden size. */
export class LlavaMultiModalProjector extends Module {
  linear_1: Linear;
  linear_2: Linear;
  readonly #activation: ActivationModule;

  constructor(visionFeatureSize: number, textHiddenSize: number, hiddenAct: string, bias: boolean) {
    super();
    this.linear_1 = new Linear(visionFeatureSize, textHiddenSize, { bias });
    this.#activation = activation(hiddenAct);
    this.linear_2 = new Linear(textHiddenSize, textHiddenSize, { bias });
  }

  forward(features: Tensor): Tensor {
    return tidy(() => this.linear_2.forward(this.#activation.forward(this.linear_1.forward(features))));
  }
}

/** Which hidden states to take: indexes into [embeddings, layer 1, ..., layer n], negative from the end. */
export function resolveFeatureLayers(featureLayer: number | number[], numLayers: number): number[] {
  const count = numLayers + 1;
  return (Array.isArray(featureLayer) ? featureLayer : [featureLayer]).map((layer) => {
    const index = layer < 0 ? count + layer : layer;
    if (index < 0 || index >= count) {
      throw new Error(`vision_feature_layer ${layer} is out of range: the vision tower has ${count} hidden states (embeddings + ${numLayers} layers)`);
    }
    return index;
  });
}

export interface ImageFeatureOptions {
  vision_feature_layer?: number | number[];
  vision_feature_select_strategy?: VisionFeatureSelectStrategy;
}

/** transformers' LlavaModelOutputWithPast. */
export interface LlavaModelOutput extends DecoderOutput {
  /** Projected image features of all images [images * tokens per image, text hidden], when images were given. */
  image_hidden_states?: Tensor;
}

export interface LlavaInputs extends CausalLMInputs, ImageFeatureOptions {
  /** [images, channels, height, width]; each image's features replace one run of image tokens. */
  pixel_values?: Tensor | null;
  /** Precomputed projected features [images, tokens per image, text hidden] instead of pixel_values. */
  image_features?: Tensor | null;
}

/** transformers' LlavaCausalLMOutputWithPast. */
export interface LlavaOutput extends CausalLMOutput {
  image_hidden_states?: Tensor;
}

/** Vision tower, projector and language model, without the LM head (transformers' LlavaModel). */
export class LlavaModel extends Module {
  vision_tower: VisionTower;
  multi_modal_projector: LlavaMultiModalProjector;
  language_model: DecoderBackbone;
  readonly config: LlavaConfig;

  /** languageModel: the decoder to use (default: built from text_config by its model_type). */
  constructor(config: LlavaConfig, languageModel?: DecoderBackbone) {
    super();
    this.config = config;
    this.vision_tower = buildVisionTower(config.vision_config);
    const featureLayers = Array.isArray(config.vision_feature_layer) ? config.vision_feature_layer.length : 1;
    this.language_model = languageModel ?? (buildCausalLM(config.text_config) as unknown as { model: DecoderBackbone }).model;
    const textHidden = this.language_model.embed_tokens.embeddingDim;
    this.multi_modal_projector = new LlavaMultiModalProjector(
      config.vision_config.hidden_size * featureLayers, textHidden, config.projector_hidden_act, config.multimodal_projector_bias,
    );
  }

  getInputEmbeddings(): Embedding {
    return this.language_model.embed_tokens;
  }

  /**
   * Projected image features [images, tokens per image, text hidden]: the chosen hidden states of the vision
   * tower (the class token dropped under "default"), concatenated along the hidden size, through the projector.
   */
  getImageFeatures(pixelValues: Tensor, options: ImageFeatureOptions = {}): Tensor {
    return tidy(() => {
      const strategy = options.vision_feature_select_strategy ?? this.config.vision_feature_select_strategy;
      const numLayers = this.vision_tower.config.num_hidden_layers;
      const layers = resolveFeatureLayers(options.vision_feature_layer ?? this.config.vision_feature_layer, numLayers);
      // Layers after the deepest one used do not affect the features: skip them.
      const tower: BaseModelOutputWithPooling = this.vision_tower.forward({ pixel_values: pixelValues, output_hidden_states: true, lastLayer: Math.max(...layers) });
      const selected = layers.map((i) => {
        const states = tower.hidden_states![i];
        return strategy === "default" ? states.slice(1, 1) : states;
      });
      const features = selected.length === 1 ? selected[0] : F.cat(selected, -1);
      return this.multi_modal_projector.forward(features);
    });
  }

  /**
   * [batch, length] mask of image placeholders: from input_ids, or (embeddings given instead) where the
   * embedding equals the image token's, as transformers does.
   */
  placeholderMask(inputIds: Tensor | undefined, inputsEmbeds: Tensor): Tensor {
    return noGrad(() =>
      tidy(() => {
        if (inputIds) return inputIds.eq(this.config.image_token_id);
        const imageEmbedding = this.getInputEmbeddings().forward(full([], this.config.image_token_id, { dtype: "int64", device: inputsEmbeds.device }));
        return inputsEmbeds.eq(imageEmbedding).all(-1);
      }),
    );
  }

  /**
   * The embeddings with every image placeholder replaced, in order, by the rows of imageFeatures (all images'
   * tokens in sequence). Throws when the counts differ, naming both.
   */
  mergeImageFeatures(inputsEmbeds: Tensor, placeholders: Tensor, imageFeatures: Tensor): Tensor {
    return tidy(() => {
      const hidden = inputsEmbeds.shape[inputsEmbeds.ndim - 1];
      const rows = imageFeatures.reshape(-1, imageFeatures.shape[imageFeatures.ndim - 1]);
      if (rows.shape[1] !== hidden) {
        throw new Error(`image features have hidden size ${rows.shape[1]} but the text embeddings have ${hidden}: the projector does not match the language model`);
      }
      const positions = placeholders.nonzero(); // [tokens, 2]: (row, position), row-major like masked_scatter
      const imageTokens = positions.shape[0];
      if (imageTokens !== rows.shape[0]) {
        const [images, perImage] = imageFeatures.ndim === 3 ? imageFeatures.shape : [1, rows.shape[0]];
        throw new Error(
          `Image features and image tokens do not match: tokens: ${imageTokens}, features: ${rows.shape[0]} ` +
            `(${images} image(s) x ${perImage} tokens). Each image needs exactly ${perImage} image tokens (id ${this.config.image_token_id}) in ` +
            "input_ids: let the processor expand the <image> placeholder, and pass one image per placeholder.",
        );
      }
      const [batchIndex, positionIndex] = positions.unbind(1);
      return inputsEmbeds.indexPut([batchIndex, positionIndex], rows.to(inputsEmbeds.dtype));
    });
  }

  forward(inputs: LlavaInputs): LlavaModelOutput {
    if ((inputs.input_ids === undefined) === (inputs.inputs_embeds === undefined)) {
      throw new Error("LLaVA forward() needs exactly one of input_ids and inputs_embeds");
    }
    if (inputs.pixel_values && inputs.image_features) throw new Error("LLaVA forward(): pass pixel_values or image_features, not both");
    return tidy(() => {
      let embeds = inputs.inputs_embeds ?? this.getInputEmbeddings().forward(inputs.input_ids!);
      let imageFeatures: Tensor | undefined;
      if (inputs.pixel_values || inputs.image_features) {
        imageFeatures = inputs.image_features ?? this.getImageFeatures(inputs.pixel_values!, inputs);
        embeds = this.mergeImageFeatures(embeds, this.placeholderMask(inputs.input_ids, embeds), imageFeatures);
      }
      const out = this.language_model.forward({
        inputs_embeds: embeds,
        attention_mask: inputs.attention_mask,
        position_ids: inputs.position_ids,
        past_key_values: inputs.past_key_values,
        use_cache: inputs.use_cache,
        output_hidden_states: inputs.output_hidden_states,
      });
      const result: LlavaModelOutput = { last_hidden_state: out.last_hidden_state };
      if (out.hidden_states) result.hidden_states = out.hidden_states;
      if (out.past_key_values) result.past_key_values = out.past_key_values;
      // As transformers: all images' features in one [images * tokens, hidden] matrix.
      if (imageFeatures) result.image_hidden_states = imageFeatures.reshape(-1, imageFeatures.shape[imageFeatures.ndim - 1]);
      return result;
    });
  }
}

/** LLaVA with its LM head (transformers' LlavaForConditionalGeneration). */
export class LlavaForConditionalGeneration extends Module {
  model: LlavaModel;
  lm_head: Linear;
  readonly config: LlavaConfig;

  constructor(config: LlavaConfig) {
    super();
    this.config = config;
    // The text model's own head becomes ours: tied to embed_tokens when the config says so.
    const text = config.text_config;
    const textConfig = new ConfigReader({ ...text.raw, tie_word_embeddings: config.tie_word_embeddings }, text.file, text.path);
    const causalLM = buildCausalLM(textConfig) as unknown as { model?: DecoderBackbone; lm_head?: Linear };
    if (!causalLM.model || !causalLM.lm_head) {
      throw new Error(`LLaVA: the ${textConfig.string("model_type", "llama")} language model has no model / lm_head modules to take over`);
    }
    this.model = new LlavaModel(config, causalLM.model);
    this.lm_head = causalLM.lm_head;
  }

  /** [tied, source] parameter names for loading: lm_head shares embed_tokens when tie_word_embeddings. */
  tiedWeights(): [string, string][] {
    return this.config.tie_word_embeddings ? [["lm_head.weight", "model.language_model.embed_tokens.weight"]] : [];
  }

  getInputEmbeddings(): Embedding {
    return this.model.getInputEmbeddings();
  }

  getImageFeatures(pixelValues: Tensor, options: ImageFeatureOptions = {}): Tensor {
    return this.model.getImageFeatures(pixelValues, options);
  }

  forward(inputs: LlavaInputs): LlavaOutput {
    return tidy(() => {
      const out = this.model.forward(inputs);
      const result: LlavaOutput = causalLMHead(this.lm_head, out, inputs);
      if (out.image_hidden_states) result.image_hidden_states = out.image_hidden_states;
      return result;
    });
  }
}

/** Builds the model with placeholder weights (to be loaded right after). */
export function buildLlavaForLoading(config: LlavaConfig): LlavaForConditionalGeneration {
  return skipRandomInit(() => new LlavaForConditionalGeneration(config));
}
