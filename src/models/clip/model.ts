// CLIP (Radford et al. 2021) as transformers implements it: a ViT image tower, a causal text tower and the
// two projections into a shared embedding space. Property paths equal the Hugging Face weight names
// (vision_model.encoder.layers.0.self_attn.q_proj.weight, text_model.final_layer_norm.bias, ...).
import { Tensor, tidy, arange, cat, noGrad, F } from "../../torch/index.js";
import { Module, ModuleList, Parameter, Linear, Embedding, LayerNorm, Conv2d, activation, init, type ActivationModule } from "../../torch/nn/index.js";
import { empty } from "../../torch/creation.js";
import type { CLIPConfig, CLIPTextConfig, CLIPVisionConfig } from "./config.js";

/** transformers' BaseModelOutputWithPooling. */
export interface BaseModelOutputWithPooling {
  /** Output of the last layer (after the final norm where the model has one there). */
  last_hidden_state: Tensor;
  /** The pooled representation (CLS / eos token / attention pooling), or null when the model has none. */
  pooler_output: Tensor | null;
  /** The input of the first layer, then every layer's output (num_hidden_layers + 1 tensors), when asked for. */
  hidden_states?: Tensor[];
}

/** The settings an encoder layer needs (shared by CLIP's two towers and by SigLIP's). */
export interface EncoderLayerConfig {
  hidden_size: number;
  intermediate_size: number;
  num_attention_heads: number;
  num_hidden_layers: number;
  hidden_act: string;
  layer_norm_eps: number;
  attention_dropout: number;
}

/**
 * The attention mask an encoder layer takes: a boolean [batch, 1, query, key] tensor (true = may attend),
 * or null for full bidirectional attention.
 */
export type EncoderMask = Tensor | null;

// ---- the transformer encoder (identical in both towers) ----

/** Multi-head self-attention with biased q/k/v/out projections (CLIPAttention). */
export class CLIPAttention extends Module {
  k_proj: Linear;
  v_proj: Linear;
  q_proj: Linear;
  out_proj: Linear;
  readonly numHeads: number;
  readonly headDim: number;
  readonly scale: number;
  readonly dropout: number;

  constructor(config: EncoderLayerConfig) {
    super();
    const embedDim = config.hidden_size;
    this.numHeads = config.num_attention_heads;
    this.headDim = embedDim / this.numHeads;
    if (!Number.isInteger(this.headDim)) {
      throw new Error(`hidden_size ${embedDim} must be divisible by num_attention_heads ${this.numHeads}; fix config.json`);
    }
    this.scale = this.headDim ** -0.5;
    this.dropout = config.attention_dropout;
    this.k_proj = new Linear(embedDim, embedDim);
    this.v_proj = new Linear(embedDim, embedDim);
    this.q_proj = new Linear(embedDim, embedDim);
    this.out_proj = new Linear(embedDim, embedDim);
  }

  forward(hiddenStates: Tensor, mask: EncoderMask): Tensor {
    return tidy(() => {
      const [batch, length, embedDim] = hiddenStates.shape;
      const heads = (t: Tensor) => t.view(batch, length, this.numHeads, this.headDim).transpose(1, 2);
      const q = heads(this.q_proj.forward(hiddenStates));
      const k = heads(this.k_proj.forward(hiddenStates));
      const v = heads(this.v_proj.forward(hiddenStates));
      const attended = F.scaledDotProductAttention(q, k, v, {
        mask,
        scale: this.scale,
        dropoutP: this.training ? this.dropout : 0,
      });
      return this.out_proj.forward(attended.transpose(1, 2).reshape(batch, length, embedDim));
    });
  }
}

/** fc1 -> activation -> fc2 (CLIPMLP). */
export class CLIPMLP extends Module {
  fc1: Linear;
  fc2: Linear;
  readonly #activation: ActivationModule;

  constructor(config: { hidden_size: number; intermediate_size: number; hidden_act: string }) {
    super();
    this.#activation = activation(config.hidden_act);
    this.fc1 = new Linear(config.hidden_size, config.intermediate_size);
    this.fc2 = new Linear(config.intermediate_size, config.hidden_size);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.fc2.forward(this.#activation.forward(this.fc1.forward(x))));
  }
}

/** Pre-norm transformer block: x + attn(ln1(x)), then x + mlp(ln2(x)) (CLIPEncoderLayer). */
export class CLIPEncoderLayer extends Module {
  self_attn: CLIPAttention;
  layer_norm1: LayerNorm;
  mlp: CLIPMLP;
  layer_norm2: LayerNorm;

  constructor(config: EncoderLayerConfig) {
    super();
    this.self_attn = new CLIPAttention(config);
    this.layer_norm1 = new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
    this.mlp = new CLIPMLP(config);
    this.layer_norm2 = new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
  }

  forward(hiddenStates: Tensor, mask: EncoderMask): Tensor {
    return tidy(() => {
      const afterAttention = hiddenStates.add(this.self_attn.forward(this.layer_norm1.forward(hiddenStates), mask));
      return afterAttention.add(this.mlp.forward(this.layer_norm2.forward(afterAttention)));
    });
  }
}

/** The stack of encoder layers (CLIPEncoder). */
export class CLIPEncoder extends Module {
  layers: ModuleList<CLIPEncoderLayer>;

  constructor(config: EncoderLayerConfig) {
    super();
    this.layers = new ModuleList(Array.from({ length: config.num_hidden_layers }, () => new CLIPEncoderLayer(config)));
  }

  /**
   * Runs the layers; returns the last output and, when collectHidden, the input followed by every layer's
   * output (transformers' hidden_states). lastLayer stops early (a vision tower feeding a projector).
   */
  forward(inputsEmbeds: Tensor, mask: EncoderMask, options: { collectHidden?: boolean; lastLayer?: number } = {}): { last: Tensor; hidden?: Tensor[] } {
    const hidden: Tensor[] | undefined = options.collectHidden ? [inputsEmbeds] : undefined;
    const stop = options.lastLayer ?? this.layers.length;
    let h = inputsEmbeds;
    for (let i = 0; i < stop; i++) {
      const next = this.layers.at(i).forward(h, mask);
      // Keep every layer's output when collecting hidden states; otherwise free the previous one.
      if (hidden) hidden.push(next);
      else if (h !== inputsEmbeds) h.dispose();
      h = next;
    }
    return { last: h, hidden };
  }
}

// ---- the vision tower ----

/** Patch embedding (Conv2d without bias), a learned class token and learned position embeddings. */
export class CLIPVisionEmbeddings extends Module {
  class_embedding: Parameter;
  patch_embedding: Conv2d;
  position_embedding: Embedding;
  readonly imageSize: number;
  readonly patchSize: number;
  readonly numPositions: number;

  constructor(config: CLIPVisionConfig) {
    super();
    this.imageSize = config.image_size;
    this.patchSize = config.patch_size;
    this.class_embedding = new Parameter(init.normal_(empty([config.hidden_size])));
    this.patch_embedding = new Conv2d(config.num_channels, config.hidden_size, config.patch_size, { stride: config.patch_size, bias: false });
    this.numPositions = Math.floor(config.image_size / config.patch_size) ** 2 + 1;
    this.position_embedding = new Embedding(this.numPositions, config.hidden_size);
  }

  forward(pixelValues: Tensor, interpolatePosEncoding = false): Tensor {
    return tidy(() => {
      const [batch, , height, width] = pixelValues.shape;
      if (!interpolatePosEncoding && (height !== this.imageSize || width !== this.imageSize)) {
        throw new Error(
          `CLIP: input image size (${height}*${width}) doesn't match the model (${this.imageSize}*${this.imageSize}); ` +
            "resize the images, or pass interpolate_pos_encoding: true to resize the position embeddings",
        );
      }
      const weight = this.patch_embedding.weight;
      const pixels = pixelValues.dtype === weight.dtype ? pixelValues : pixelValues.to(weight.dtype);
      const patches = this.patch_embedding.forward(pixels).flatten(2).transpose(1, 2); // [batch, grid, hidden]
      const classToken = this.class_embedding.expand(batch, 1, -1);
      const embeddings = cat([classToken, patches], 1);
      const positions = interpolatePosEncoding
        ? this.interpolatePosEncoding(embeddings.shape[1] - 1, height, width)
        : this.position_embedding.weight.unsqueeze(0);
      return embeddings.add(positions);
    });
  }

  /**
   * Position embeddings for a height x width input: the square grid of learned patch positions resized
   * bicubically to the input's patch grid, the class position kept (transformers' interpolate_pos_encoding).
   */
  interpolatePosEncoding(numPatches: number, height: number, width: number): Tensor {
    return tidy(() => {
      const table = this.position_embedding.weight;
      const numPositions = table.shape[0] - 1;
      if (numPatches === numPositions && height === width) return table.unsqueeze(0);
      const dim = table.shape[1];
      const side = Math.floor(Math.sqrt(numPositions));
      const grid = table.slice(0, 1).reshape(1, side, side, dim).permute(0, 3, 1, 2);
      const resized = F.interpolate(grid, {
        size: [Math.floor(height / this.patchSize), Math.floor(width / this.patchSize)],
        mode: "bicubic",
        alignCorners: false,
      });
      const patchPositions = resized.permute(0, 2, 3, 1).reshape(1, -1, dim);
      return cat([table.slice(0, 0, 1).unsqueeze(0), patchPositions], 1);
    });
  }
}

export interface VisionForwardOptions {
  /** Resize the position embeddings to the input's patch grid (any height and width). */
  interpolate_pos_encoding?: boolean;
  output_hidden_states?: boolean;
  /** Stop after this many encoder layers (the last_hidden_state is then that layer's output, unnormed). */
  lastLayer?: number;
}

/** The vision transformer (transformers' CLIPVisionTransformer; the module under vision_model). */
export class CLIPVisionTransformer extends Module {
  embeddings: CLIPVisionEmbeddings;
  pre_layrnorm: LayerNorm;
  encoder: CLIPEncoder;
  post_layernorm: LayerNorm;
  readonly config: CLIPVisionConfig;

  constructor(config: CLIPVisionConfig) {
    super();
    this.config = config;
    this.embeddings = new CLIPVisionEmbeddings(config);
    this.pre_layrnorm = new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
    this.encoder = new CLIPEncoder(config);
    this.post_layernorm = new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
  }

  forward(pixelValues: Tensor, options: VisionForwardOptions = {}): BaseModelOutputWithPooling {
    return tidy(() => {
      const embedded = this.pre_layrnorm.forward(this.embeddings.forward(pixelValues, options.interpolate_pos_encoding ?? false));
      const { last, hidden } = this.encoder.forward(embedded, null, {
        collectHidden: options.output_hidden_states ?? false,
        lastLayer: options.lastLayer,
      });
      // The pooled output is the class token of the last layer, normed (the sequence itself is not).
      const pooled = this.post_layernorm.forward(last.select(1, 0));
      return { last_hidden_state: last, pooler_output: pooled, hidden_states: hidden };
    });
  }
}

/** CLIP's image encoder alone (transformers' CLIPVisionModel). */
export class CLIPVisionModel extends Module {
  vision_model: CLIPVisionTransformer;
  readonly config: CLIPVisionConfig;

  constructor(config: CLIPVisionConfig) {
    super();
    this.config = config;
    this.vision_model = new CLIPVisionTransformer(config);
  }

  forward(inputs: { pixel_values: Tensor } & VisionForwardOptions): BaseModelOutputWithPooling {
    return this.vision_model.forward(inputs.pixel_values, inputs);
  }
}

// ---- the text tower ----

/** Token and learned position embeddings. */
export class CLIPTextEmbeddings extends Module {
  token_embedding: Embedding;
  position_embedding: Embedding;

  constructor(config: CLIPTextConfig) {
    super();
    this.token_embedding = new Embedding(config.vocab_size, config.hidden_size);
    this.position_embedding = new Embedding(config.max_position_embeddings, config.hidden_size);
  }

  forward(inputIds: Tensor, positionIds?: Tensor | null): Tensor {
    return tidy(() => {
      const length = inputIds.shape[inputIds.ndim - 1];
      const maxPositions = this.position_embedding.numEmbeddings;
      if (length > maxPositions) {
        throw new Error(`CLIP text: sequence length ${length} exceeds max_position_embeddings ${maxPositions}; truncate the input ids`);
      }
      const positions = positionIds ?? arange(length, undefined, 1, { device: inputIds.device }).unsqueeze(0);
      return this.token_embedding.forward(inputIds).add(this.position_embedding.forward(positions));
    });
  }
}

/**
 * The causal mask of CLIP's text tower, combined with the padding mask: [batch, 1, length, length], true
 * where a query may attend. A row that could attend to nothing (padding before any token) attends to every
 * key instead, so softmax has no empty row; its output is padding and is never pooled.
 */
export function causalPaddingMask(batch: number, length: number, attentionMask: Tensor | null | undefined, device: string): Tensor {
  return noGrad(() =>
    tidy(() => {
      const positions = arange(length, undefined, 1, { device });
      let allowed = positions.view(1, 1, 1, length).le(positions.view(1, 1, length, 1)); // key <= query
      if (attentionMask) {
        if (attentionMask.ndim !== 2 || attentionMask.shape[0] !== batch || attentionMask.shape[1] !== length) {
          throw new Error(`attention_mask must be [batch, length] = [${batch}, ${length}], got [${attentionMask.shape}]`);
        }
        allowed = allowed.logicalAnd(attentionMask.ne(0).view(batch, 1, 1, length));
      }
      const full = allowed.expand(batch, 1, length, length);
      return full.logicalOr(full.any(-1, true).logicalNot());
    }),
  );
}

/** The text transformer (transformers' CLIPTextTransformer; the module under text_model). */
export class CLIPTextTransformer extends Module {
  embeddings: CLIPTextEmbeddings;
  encoder: CLIPEncoder;
  final_layer_norm: LayerNorm;
  readonly config: CLIPTextConfig;
  /** The id pooled at; 2 selects the legacy rule (the position of the highest id). Settable, as in transformers. */
  eosTokenId: number | null;

  constructor(config: CLIPTextConfig) {
    super();
    this.config = config;
    this.embeddings = new CLIPTextEmbeddings(config);
    this.encoder = new CLIPEncoder(config);
    this.final_layer_norm = new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
    this.eosTokenId = config.eos_token_id;
  }

  forward(inputs: TextForwardInputs): BaseModelOutputWithPooling {
    return tidy(() => {
      const ids = inputs.input_ids.ndim === 1 ? inputs.input_ids.unsqueeze(0) : inputs.input_ids;
      const [batch, length] = ids.shape;
      const embedded = this.embeddings.forward(ids, inputs.position_ids);
      const mask = causalPaddingMask(batch, length, inputs.attention_mask, embedded.device);
      const { last, hidden } = this.encoder.forward(embedded, mask, { collectHidden: inputs.output_hidden_states ?? false });
      const normed = this.final_layer_norm.forward(last);
      const pooled = normed.index([arange(batch, undefined, 1, { device: normed.device }), this.poolingPositions(ids)]);
      return { last_hidden_state: normed, pooler_output: pooled, hidden_states: hidden };
    });
  }

  /**
   * The position pooled in each row. Configs with eos_token_id 2 (the openai checkpoints, from before the
   * eos id was fixed in transformers PR #24773) take the highest id, which is the eot token of CLIP's
   * tokenizer; others take the first occurrence of eos_token_id (position 0 when a row has none).
   */
  poolingPositions(ids: Tensor): Tensor {
    return tidy(() => {
      if (this.eosTokenId === 2 || this.eosTokenId === null) return ids.to("int32").argmax(-1);
      return ids.eq(this.eosTokenId).to("int32").argmax(-1);
    });
  }
}

export interface TextForwardInputs {
  /** [batch, length] int64 token ids. */
  input_ids: Tensor;
  /** [batch, length], 1 for tokens and 0 for padding. */
  attention_mask?: Tensor | null;
  position_ids?: Tensor | null;
  output_hidden_states?: boolean;
}

/** CLIP's text encoder alone (transformers' CLIPTextModel). */
export class CLIPTextModel extends Module {
  text_model: CLIPTextTransformer;
  readonly config: CLIPTextConfig;

  constructor(config: CLIPTextConfig) {
    super();
    this.config = config;
    this.text_model = new CLIPTextTransformer(config);
  }

  forward(inputs: TextForwardInputs): BaseModelOutputWithPooling {
    return this.text_model.forward(inputs);
  }
}

// ---- the dual encoder ----

/** transformers' CLIPOutput. */
export interface CLIPOutput {
  /** Symmetric contrastive loss, when asked for (needs as many texts as images). */
  loss?: Tensor;
  /** [images, texts] scaled cosine similarities. */
  logits_per_image: Tensor;
  /** [texts, images], the transpose of logits_per_image. */
  logits_per_text: Tensor;
  /** Projected and L2-normalised text features [texts, projection_dim]. */
  text_embeds: Tensor;
  /** Projected and L2-normalised image features [images, projection_dim]. */
  image_embeds: Tensor;
  /** The text tower's output (pooler_output unprojected). */
  text_model_output: BaseModelOutputWithPooling;
  /** The vision tower's output (pooler_output unprojected). */
  vision_model_output: BaseModelOutputWithPooling;
}

export interface CLIPForwardInputs extends TextForwardInputs {
  pixel_values: Tensor;
  return_loss?: boolean;
  interpolate_pos_encoding?: boolean;
}

/** x / ||x||_2 over the last dim (transformers divides by the norm without an epsilon). */
function normalizeRows(x: Tensor): Tensor {
  return tidy(() => x.div(x.square().sum(-1, true).sqrt()));
}

/** CLIP's loss: mean of the cross entropies of texts over images and images over texts (clip_loss). */
export function clipContrastiveLoss(logitsPerText: Tensor): Tensor {
  return tidy(() => {
    const [texts, images] = logitsPerText.shape;
    if (texts !== images) throw new Error(`CLIP loss needs as many texts as images (matched pairs), got ${texts} texts and ${images} images`);
    const targets = arange(texts, undefined, 1, { device: logitsPerText.device });
    return F.crossEntropy(logitsPerText, targets).add(F.crossEntropy(logitsPerText.T, targets)).div(2);
  });
}

/** Text tower, vision tower and their projections (transformers' CLIPModel). */
export class CLIPModel extends Module {
  text_model: CLIPTextTransformer;
  vision_model: CLIPVisionTransformer;
  visual_projection: Linear;
  text_projection: Linear;
  logit_scale: Parameter;
  readonly config: CLIPConfig;

  constructor(config: CLIPConfig) {
    super();
    this.config = config;
    this.text_model = new CLIPTextTransformer(config.text_config);
    this.vision_model = new CLIPVisionTransformer(config.vision_config);
    this.visual_projection = new Linear(config.vision_config.hidden_size, config.projection_dim, { bias: false });
    this.text_projection = new Linear(config.text_config.hidden_size, config.projection_dim, { bias: false });
    this.logit_scale = new Parameter(init.constant_(empty([]), config.logit_scale_init_value));
  }

  /** Projected (not normalised) image features [images, projection_dim]. */
  getImageFeatures(pixelValues: Tensor, options: { interpolate_pos_encoding?: boolean } = {}): Tensor {
    return tidy(() => this.visual_projection.forward(this.vision_model.forward(pixelValues, options).pooler_output!));
  }

  /** Projected (not normalised) text features [texts, projection_dim]. */
  getTextFeatures(inputs: TextForwardInputs): Tensor {
    return tidy(() => this.text_projection.forward(this.text_model.forward(inputs).pooler_output!));
  }

  forward(inputs: CLIPForwardInputs): CLIPOutput {
    return tidy(() => {
      const vision = this.vision_model.forward(inputs.pixel_values, inputs);
      const text = this.text_model.forward(inputs);
      const imageEmbeds = normalizeRows(this.visual_projection.forward(vision.pooler_output!));
      const textEmbeds = normalizeRows(this.text_projection.forward(text.pooler_output!));
      const logitsPerText = textEmbeds.matmul(imageEmbeds.T).mul(this.logit_scale.exp());
      const output: CLIPOutput = {
        logits_per_image: logitsPerText.T,
        logits_per_text: logitsPerText,
        text_embeds: textEmbeds,
        image_embeds: imageEmbeds,
        text_model_output: text,
        vision_model_output: vision,
      };
      if (inputs.return_loss) output.loss = clipContrastiveLoss(logitsPerText);
      return output;
    });
  }
}
