// SigLIP (Zhai et al. 2023) as transformers implements it: a ViT without class token whose pooled output
// comes from a multihead attention-pooling head, a bidirectional text tower pooled at its last token, and
// a pairwise sigmoid loss. The encoder layers are CLIP's (transformers copies them); property paths equal
// the Hugging Face weight names (vision_model.head.attention.in_proj_weight, text_model.head.bias, ...).
import { Tensor, tidy, arange, noGrad, eye, F } from "../../torch/index.js";
import { Module, Parameter, Linear, Embedding, LayerNorm, Conv2d, init } from "../../torch/nn/index.js";
import { empty } from "../../torch/creation.js";
import { CLIPEncoder, CLIPMLP, type BaseModelOutputWithPooling, type TextForwardInputs, type VisionForwardOptions } from "../clip/model.js";
import type { SiglipConfig, SiglipTextConfig, SiglipVisionConfig } from "./config.js";

// ---- the vision tower ----

/** Patch embedding (Conv2d with bias) plus learned position embeddings, one per patch (no class token). */
export class SiglipVisionEmbeddings extends Module {
  patch_embedding: Conv2d;
  position_embedding: Embedding;
  readonly patchSize: number;
  readonly numPositions: number;

  constructor(config: SiglipVisionConfig) {
    super();
    this.patchSize = config.patch_size;
    this.patch_embedding = new Conv2d(config.num_channels, config.hidden_size, config.patch_size, { stride: config.patch_size, padding: "valid" });
    this.numPositions = Math.floor(config.image_size / config.patch_size) ** 2;
    this.position_embedding = new Embedding(this.numPositions, config.hidden_size);
  }

  forward(pixelValues: Tensor, interpolatePosEncoding = false): Tensor {
    return tidy(() => {
      const [, , height, width] = pixelValues.shape;
      const weight = this.patch_embedding.weight;
      const pixels = pixelValues.dtype === weight.dtype ? pixelValues : pixelValues.to(weight.dtype);
      const patches = this.patch_embedding.forward(pixels).flatten(2).transpose(1, 2); // [batch, grid, hidden]
      const numPatches = patches.shape[1];
      if (!interpolatePosEncoding && numPatches !== this.numPositions) {
        throw new Error(
          `SigLIP: a ${height}x${width} input gives ${numPatches} patches but the model has ${this.numPositions} positions; ` +
            "resize the images to the config's image_size, or pass interpolate_pos_encoding: true",
        );
      }
      const positions = interpolatePosEncoding ? this.interpolatePosEncoding(numPatches, height, width) : this.position_embedding.weight.unsqueeze(0);
      return patches.add(positions);
    });
  }

  /** The square grid of learned positions resized bicubically to the input's patch grid (transformers' interpolate_pos_encoding). */
  interpolatePosEncoding(numPatches: number, height: number, width: number): Tensor {
    return tidy(() => {
      const table = this.position_embedding.weight;
      const [numPositions, dim] = table.shape;
      if (numPatches === numPositions && height === width) return table.unsqueeze(0);
      const side = Math.floor(Math.sqrt(numPositions));
      const grid = table.reshape(1, side, side, dim).permute(0, 3, 1, 2);
      const resized = F.interpolate(grid, {
        size: [Math.floor(height / this.patchSize), Math.floor(width / this.patchSize)],
        mode: "bicubic",
        alignCorners: false,
      });
      return resized.permute(0, 2, 3, 1).reshape(1, -1, dim);
    });
  }
}

/**
 * torch.nn.MultiheadAttention (batch first, with biases) under its own weight names: in_proj_weight holds
 * the query, key and value projections stacked [3 * hidden, hidden], in_proj_bias their biases.
 */
export class MultiheadAttention extends Module {
  in_proj_weight: Parameter;
  in_proj_bias: Parameter;
  out_proj: Linear;
  readonly numHeads: number;
  readonly headDim: number;

  constructor(embedDim: number, numHeads: number) {
    super();
    this.numHeads = numHeads;
    this.headDim = embedDim / numHeads;
    if (!Number.isInteger(this.headDim)) throw new Error(`attention pooling head: hidden_size ${embedDim} must be divisible by num_attention_heads ${numHeads}`);
    const bound = Math.sqrt(6 / (embedDim + 3 * embedDim)); // xavier_uniform_ over [3E, E], as torch initialises it
    this.in_proj_weight = new Parameter(init.uniform_(empty([3 * embedDim, embedDim]), -bound, bound));
    this.in_proj_bias = new Parameter(init.zeros_(empty([3 * embedDim])));
    this.out_proj = new Linear(embedDim, embedDim);
  }

  /** query [batch, queries, hidden] attends over key/value [batch, keys, hidden]; returns [batch, queries, hidden]. */
  forward(query: Tensor, key: Tensor, value: Tensor): Tensor {
    return tidy(() => {
      const [wq, wk, wv] = this.in_proj_weight.chunk(3, 0);
      const [bq, bk, bv] = this.in_proj_bias.chunk(3, 0);
      const heads = (t: Tensor) => t.view(t.shape[0], t.shape[1], this.numHeads, this.headDim).transpose(1, 2);
      const q = heads(F.linear(query, wq, bq));
      const k = heads(F.linear(key, wk, bk));
      const v = heads(F.linear(value, wv, bv));
      const attended = F.scaledDotProductAttention(q, k, v, { scale: this.headDim ** -0.5 });
      const [batch, , queries] = attended.shape;
      return this.out_proj.forward(attended.transpose(1, 2).reshape(batch, queries, this.numHeads * this.headDim));
    });
  }
}

/** A learned probe token attends over the patches; then a residual MLP (SiglipMultiheadAttentionPoolingHead). */
export class SiglipMultiheadAttentionPoolingHead extends Module {
  probe: Parameter;
  attention: MultiheadAttention;
  layernorm: LayerNorm;
  mlp: CLIPMLP;

  constructor(config: SiglipVisionConfig) {
    super();
    this.probe = new Parameter(init.normal_(empty([1, 1, config.hidden_size])));
    this.attention = new MultiheadAttention(config.hidden_size, config.num_attention_heads);
    this.layernorm = new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
    this.mlp = new CLIPMLP(config);
  }

  forward(hiddenState: Tensor): Tensor {
    return tidy(() => {
      const probe = this.probe.expand(hiddenState.shape[0], 1, -1);
      const attended = this.attention.forward(probe, hiddenState, hiddenState);
      return attended.add(this.mlp.forward(this.layernorm.forward(attended))).select(1, 0);
    });
  }
}

/** The vision transformer (the module under vision_model). */
export class SiglipVisionTransformer extends Module {
  embeddings: SiglipVisionEmbeddings;
  encoder: CLIPEncoder;
  post_layernorm: LayerNorm;
  head: SiglipMultiheadAttentionPoolingHead | null;
  readonly config: SiglipVisionConfig;

  constructor(config: SiglipVisionConfig) {
    super();
    this.config = config;
    this.embeddings = new SiglipVisionEmbeddings(config);
    this.encoder = new CLIPEncoder(config);
    this.post_layernorm = new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
    this.head = config.vision_use_head ? new SiglipMultiheadAttentionPoolingHead(config) : null;
  }

  /**
   * last_hidden_state is post_layernorm of the last layer's output (hidden_states keep the unnormed one);
   * pooler_output is the attention-pooling head's output, or null without a head. With lastLayer the
   * layers after it are skipped and last_hidden_state is that layer's output, unnormed and unpooled.
   */
  forward(pixelValues: Tensor, options: VisionForwardOptions = {}): BaseModelOutputWithPooling {
    return tidy(() => {
      const embedded = this.embeddings.forward(pixelValues, options.interpolate_pos_encoding ?? false);
      const { last, hidden } = this.encoder.forward(embedded, null, { collectHidden: options.output_hidden_states ?? false, lastLayer: options.lastLayer });
      if (options.lastLayer !== undefined && options.lastLayer < this.encoder.layers.length) {
        return { last_hidden_state: last, pooler_output: null, hidden_states: hidden };
      }
      const normed = this.post_layernorm.forward(last);
      return { last_hidden_state: normed, pooler_output: this.head ? this.head.forward(normed) : null, hidden_states: hidden };
    });
  }
}

/** SigLIP's image encoder alone (transformers' SiglipVisionModel). */
export class SiglipVisionModel extends Module {
  vision_model: SiglipVisionTransformer;
  readonly config: SiglipVisionConfig;

  constructor(config: SiglipVisionConfig) {
    super();
    this.config = config;
    this.vision_model = new SiglipVisionTransformer(config);
  }

  forward(inputs: { pixel_values: Tensor } & VisionForwardOptions): BaseModelOutputWithPooling {
    return this.vision_model.forward(inputs.pixel_values, inputs);
  }
}

// ---- the text tower ----

/** Token and learned position embeddings. */
export class SiglipTextEmbeddings extends Module {
  token_embedding: Embedding;
  position_embedding: Embedding;

  constructor(config: SiglipTextConfig) {
    super();
    this.token_embedding = new Embedding(config.vocab_size, config.hidden_size);
    this.position_embedding = new Embedding(config.max_position_embeddings, config.hidden_size);
  }

  forward(inputIds: Tensor, positionIds?: Tensor | null): Tensor {
    return tidy(() => {
      const length = inputIds.shape[inputIds.ndim - 1];
      const maxPositions = this.position_embedding.numEmbeddings;
      if (length > maxPositions) {
        throw new Error(`SigLIP text: sequence length ${length} exceeds max_position_embeddings ${maxPositions}; truncate the input ids (SigLIP pads to max_length)`);
      }
      const positions = positionIds ?? arange(length, undefined, 1, { device: inputIds.device }).unsqueeze(0);
      return this.token_embedding.forward(inputIds).add(this.position_embedding.forward(positions));
    });
  }
}

/**
 * Padding mask for bidirectional attention: [batch, 1, length, length], true where the key is a token.
 * A row of only padding attends to everything (its states are never pooled), avoiding an empty softmax.
 */
export function paddingMask(attentionMask: Tensor, batch: number, length: number): Tensor {
  return noGrad(() =>
    tidy(() => {
      if (attentionMask.ndim !== 2 || attentionMask.shape[0] !== batch || attentionMask.shape[1] !== length) {
        throw new Error(`attention_mask must be [batch, length] = [${batch}, ${length}], got [${attentionMask.shape}]`);
      }
      const keys = attentionMask.ne(0).view(batch, 1, 1, length);
      const usable = keys.logicalOr(keys.any(-1, true).logicalNot());
      return usable.expand(batch, 1, length, length);
    }),
  );
}

/** The text transformer (the module under text_model): no causal mask, pooled at the last position. */
export class SiglipTextTransformer extends Module {
  embeddings: SiglipTextEmbeddings;
  encoder: CLIPEncoder;
  final_layer_norm: LayerNorm;
  head: Linear;
  readonly config: SiglipTextConfig;

  constructor(config: SiglipTextConfig) {
    super();
    this.config = config;
    this.embeddings = new SiglipTextEmbeddings(config);
    this.encoder = new CLIPEncoder(config);
    this.final_layer_norm = new LayerNorm(config.hidden_size, { eps: config.layer_norm_eps });
    this.head = new Linear(config.hidden_size, config.projection_size);
  }

  forward(inputs: TextForwardInputs): BaseModelOutputWithPooling {
    return tidy(() => {
      const ids = inputs.input_ids.ndim === 1 ? inputs.input_ids.unsqueeze(0) : inputs.input_ids;
      const [batch, length] = ids.shape;
      const embedded = this.embeddings.forward(ids, inputs.position_ids);
      const mask = inputs.attention_mask ? paddingMask(inputs.attention_mask, batch, length) : null;
      const { last, hidden } = this.encoder.forward(embedded, mask, { collectHidden: inputs.output_hidden_states ?? false });
      const normed = this.final_layer_norm.forward(last);
      // SigLIP pools the last position, which is padding for short texts (its tokenizer pads to max_length).
      const pooled = this.head.forward(normed.select(1, length - 1));
      return { last_hidden_state: normed, pooler_output: pooled, hidden_states: hidden };
    });
  }
}

/** SigLIP's text encoder alone (transformers' SiglipTextModel). */
export class SiglipTextModel extends Module {
  text_model: SiglipTextTransformer;
  readonly config: SiglipTextConfig;

  constructor(config: SiglipTextConfig) {
    super();
    this.config = config;
    this.text_model = new SiglipTextTransformer(config);
  }

  forward(inputs: TextForwardInputs): BaseModelOutputWithPooling {
    return this.text_model.forward(inputs);
  }
}

// ---- the dual encoder ----

/** transformers' SiglipOutput. */
export interface SiglipOutput {
  /** Pairwise sigmoid loss (texts and images matched by index), when asked for. */
  loss?: Tensor;
  /** [images, texts]: cosine similarity * exp(logit_scale) + logit_bias. */
  logits_per_image: Tensor;
  /** [texts, images], the transpose. */
  logits_per_text: Tensor;
  /** L2-normalised text head outputs. */
  text_embeds: Tensor;
  /** L2-normalised pooled image outputs. */
  image_embeds: Tensor;
  text_model_output: BaseModelOutputWithPooling;
  vision_model_output: BaseModelOutputWithPooling;
}

export interface SiglipForwardInputs extends TextForwardInputs {
  pixel_values: Tensor;
  return_loss?: boolean;
  interpolate_pos_encoding?: boolean;
}

/**
 * SigLIP's loss (big_vision's sigmoid loss as transformers computes it): -sum_j log sigmoid(z_ij * l_ij)
 * per text i, with z = +1 on the diagonal and -1 elsewhere, averaged over texts.
 */
export function siglipSigmoidLoss(logitsPerText: Tensor): Tensor {
  return tidy(() => {
    const [texts, images] = logitsPerText.shape;
    if (texts !== images) throw new Error(`SigLIP loss needs as many texts as images (matched pairs), got ${texts} texts and ${images} images`);
    const signs = eye(texts, { dtype: logitsPerText.dtype, device: logitsPerText.device }).mul(2).sub(1);
    return F.logSigmoid(signs.mul(logitsPerText)).sum(-1).neg().mean();
  });
}

/** Text tower, vision tower, and the learned temperature and bias (transformers' SiglipModel). */
export class SiglipModel extends Module {
  text_model: SiglipTextTransformer;
  vision_model: SiglipVisionTransformer;
  logit_scale: Parameter;
  logit_bias: Parameter;
  readonly config: SiglipConfig;

  constructor(config: SiglipConfig) {
    super();
    if (!config.vision_config.vision_use_head) throw new Error("SiglipModel needs the vision attention-pooling head: vision_config.vision_use_head must not be false");
    this.config = config;
    this.text_model = new SiglipTextTransformer(config.text_config);
    this.vision_model = new SiglipVisionTransformer(config.vision_config);
    this.logit_scale = new Parameter(init.zeros_(empty([1])));
    this.logit_bias = new Parameter(init.zeros_(empty([1])));
  }

  /** Pooled image features [images, hidden] (the head's output, not normalised). */
  getImageFeatures(pixelValues: Tensor, options: { interpolate_pos_encoding?: boolean } = {}): Tensor {
    return tidy(() => this.vision_model.forward(pixelValues, options).pooler_output!);
  }

  /** Pooled text features [texts, projection_size] (the text head's output, not normalised). */
  getTextFeatures(inputs: TextForwardInputs): Tensor {
    return tidy(() => this.text_model.forward(inputs).pooler_output!);
  }

  forward(inputs: SiglipForwardInputs): SiglipOutput {
    return tidy(() => {
      const vision = this.vision_model.forward(inputs.pixel_values, inputs);
      const text = this.text_model.forward(inputs);
      const imageEmbeds = vision.pooler_output!.div(vision.pooler_output!.norm(2, -1, true));
      const textEmbeds = text.pooler_output!.div(text.pooler_output!.norm(2, -1, true));
      const logitsPerText = textEmbeds.matmul(imageEmbeds.T).mul(this.logit_scale.exp()).add(this.logit_bias);
      const output: SiglipOutput = {
        logits_per_image: logitsPerText.T,
        logits_per_text: logitsPerText,
        text_embeds: textEmbeds,
        image_embeds: imageEmbeds,
        text_model_output: text,
        vision_model_output: vision,
      };
      if (inputs.return_loss) output.loss = siglipSigmoidLoss(logitsPerText);
      return output;
    });
  }
}
