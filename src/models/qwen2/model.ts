// Qwen2 (transformers' Qwen2ForCausalLM): Llama's decoder with biases on the q/k/v projections (none on
// o_proj) and optional sliding-window layers. Weight names:
//   model.embed_tokens, model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj,
//   input_layernorm, post_attention_layernorm}, model.norm, lm_head
import { Tensor, tidy, dispose, type DType } from "../../torch/index.js";
import { Module, ModuleList, Linear, Embedding, RMSNorm } from "../../torch/nn/index.js";
import { RotaryEmbedding, applyRotaryPosEmb } from "../common/rotary.js";
import { buildCausalMask, disposeCausalMask, causalAttention, type CausalMask } from "../common/attention.js";
import { KVCache } from "../common/kv_cache.js";
import { causalLMHead, type CausalLMInputs, type CausalLMOutput, type DecoderOutput } from "../common/outputs.js";
import { LlamaMLP, embedInputs, defaultPositionIds, type DecoderInputs } from "../llama/model.js";
import type { Qwen2Config, Qwen2LayerType } from "./config.js";

/** Per-forward context: rotary tables, one mask per attention kind, the cache. */
interface Qwen2LayerContext {
  cos: Tensor;
  sin: Tensor;
  masks: Record<Qwen2LayerType, CausalMask | null>;
  cache: KVCache | null;
}

export class Qwen2Attention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  readonly layerIdx: number;
  readonly headDim: number;
  readonly attentionType: Qwen2LayerType;
  readonly attentionDropout: number;

  constructor(config: Qwen2Config, layerIdx: number) {
    super();
    this.layerIdx = layerIdx;
    this.headDim = config.head_dim;
    this.attentionType = config.layer_types[layerIdx];
    this.attentionDropout = config.attention_dropout;
    const { hidden_size: hidden, num_attention_heads: heads, num_key_value_heads: kvHeads, head_dim: headDim } = config;
    this.q_proj = new Linear(hidden, heads * headDim, { bias: true });
    this.k_proj = new Linear(hidden, kvHeads * headDim, { bias: true });
    this.v_proj = new Linear(hidden, kvHeads * headDim, { bias: true });
    this.o_proj = new Linear(heads * headDim, hidden, { bias: false });
  }

  forward(hidden: Tensor, ctx: Qwen2LayerContext): Tensor {
    return tidy(() => {
      const [batch, length] = hidden.shape;
      const heads = (x: Tensor) => x.view(batch, length, -1, this.headDim).transpose(1, 2);
      const rotated = applyRotaryPosEmb(heads(this.q_proj.forward(hidden)), heads(this.k_proj.forward(hidden)), ctx.cos, ctx.sin);
      let key = rotated.k;
      let value = heads(this.v_proj.forward(hidden));
      if (ctx.cache) ({ key, value } = ctx.cache.update(key, value, this.layerIdx));
      const attended = causalAttention(rotated.q, key, value, ctx.masks[this.attentionType]!, {
        scale: 1 / Math.sqrt(this.headDim),
        dropoutP: this.training ? this.attentionDropout : 0,
      });
      return this.o_proj.forward(attended);
    });
  }
}

export class Qwen2DecoderLayer extends Module {
  self_attn: Qwen2Attention;
  mlp: LlamaMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;

  constructor(config: Qwen2Config, layerIdx: number) {
    super();
    this.self_attn = new Qwen2Attention(config, layerIdx);
    this.mlp = new LlamaMLP(config);
    this.input_layernorm = new RMSNorm(config.hidden_size, { eps: config.rms_norm_eps });
    this.post_attention_layernorm = new RMSNorm(config.hidden_size, { eps: config.rms_norm_eps });
  }

  forward(hidden: Tensor, ctx: Qwen2LayerContext): Tensor {
    return tidy(() => {
      const afterAttention = hidden.add(this.self_attn.forward(this.input_layernorm.forward(hidden), ctx));
      return afterAttention.add(this.mlp.forward(this.post_attention_layernorm.forward(afterAttention)));
    });
  }
}

/** The decoder stack without the LM head (transformers' Qwen2Model). */
export class Qwen2Model extends Module {
  embed_tokens: Embedding;
  layers: ModuleList<Qwen2DecoderLayer>;
  norm: RMSNorm;
  rotary_emb: RotaryEmbedding;
  readonly config: Qwen2Config;

  constructor(config: Qwen2Config) {
    super();
    this.config = config;
    this.embed_tokens = new Embedding(config.vocab_size, config.hidden_size, { paddingIdx: config.pad_token_id ?? undefined });
    this.layers = new ModuleList(Array.from({ length: config.num_hidden_layers }, (_, i) => new Qwen2DecoderLayer(config, i)));
    this.norm = new RMSNorm(config.hidden_size, { eps: config.rms_norm_eps });
    this.rotary_emb = new RotaryEmbedding(config.rope_parameters, { headDim: config.head_dim, maxPositionEmbeddings: config.max_position_embeddings });
  }

  forward(inputs: DecoderInputs): DecoderOutput {
    let hidden = embedInputs(this.embed_tokens, inputs);
    const [batch, length] = hidden.shape;
    const cache = inputs.past_key_values ?? (inputs.use_cache ? new KVCache() : null);
    const pastLength = cache ? cache.getSeqLength() : 0;
    const dtype = hidden.dtype as DType;
    const positionIds = inputs.position_ids ?? defaultPositionIds(pastLength, length, hidden.device);
    const { cos, sin } = this.rotary_emb.forward(positionIds, dtype);
    if (!inputs.position_ids) positionIds.dispose();
    const maskOptions = { batchSize: batch, queryLength: length, pastLength, attentionMask: inputs.attention_mask, device: hidden.device, dtype };
    const types = new Set(this.config.layer_types);
    const masks: Record<Qwen2LayerType, CausalMask | null> = {
      full_attention: types.has("full_attention") ? buildCausalMask(maskOptions) : null,
      sliding_attention: types.has("sliding_attention") ? buildCausalMask({ ...maskOptions, slidingWindow: this.config.sliding_window }) : null,
    };
    const ctx: Qwen2LayerContext = { cos, sin, masks, cache };
    const collected: Tensor[] = [];
    try {
      for (const layer of this.layers) {
        if (inputs.output_hidden_states) collected.push(hidden);
        const next = layer.forward(hidden, ctx);
        if (!inputs.output_hidden_states) hidden.dispose();
        hidden = next;
      }
      const normed = this.norm.forward(hidden);
      hidden.dispose();
      if (inputs.output_hidden_states) collected.push(normed);
      return {
        last_hidden_state: normed,
        hidden_states: inputs.output_hidden_states ? collected : undefined,
        past_key_values: cache ?? undefined,
      };
    } catch (error) {
      dispose(collected);
      throw error;
    } finally {
      dispose([cos, sin]);
      for (const mask of Object.values(masks)) if (mask) disposeCausalMask(mask);
    }
  }
}

/** Qwen2 with its LM head; lm_head shares the embedding matrix when tie_word_embeddings. */
export class Qwen2ForCausalLM extends Module {
  model: Qwen2Model;
  lm_head: Linear;
  readonly config: Qwen2Config;

  constructor(config: Qwen2Config) {
    super();
    this.config = config;
    this.model = new Qwen2Model(config);
    this.lm_head = new Linear(config.hidden_size, config.vocab_size, { bias: false });
    if (config.tie_word_embeddings) {
      this.lm_head.weight.dispose();
      this.lm_head.weight = this.model.embed_tokens.weight;
    }
  }

  /** [tied, source] weight names for loading (empty unless tie_word_embeddings). */
  tiedWeights(): [string, string][] {
    return this.config.tie_word_embeddings ? [["lm_head.weight", "model.embed_tokens.weight"]] : [];
  }

  getInputEmbeddings(): Embedding {
    return this.model.embed_tokens;
  }

  forward(inputs: CausalLMInputs): CausalLMOutput {
    return causalLMHead(this.lm_head, this.model.forward(inputs), inputs);
  }
}
