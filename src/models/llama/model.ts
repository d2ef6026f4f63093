// Llama (transformers' LlamaForCausalLM): pre-norm decoder layers of grouped-query attention with rotary
// positions and a SwiGLU MLP. Property paths are the checkpoint's weight names:
//   model.embed_tokens, model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj,
//   input_layernorm, post_attention_layernorm}, model.norm, lm_head
import { Tensor, tidy, arange, dispose, type DType } from "../../torch/index.js";
import { Module, ModuleList, Linear, Embedding, RMSNorm, activation, type ActivationModule } from "../../torch/nn/index.js";
import { RotaryEmbedding, applyRotaryPosEmb } from "../common/rotary.js";
import { buildCausalMask, disposeCausalMask, causalAttention, type CausalMask } from "../common/attention.js";
import { KVCache } from "../common/kv_cache.js";
import { causalLMHead, type CausalLMInputs, type CausalLMOutput, type DecoderOutput } from "../common/outputs.js";
import type { LlamaConfig } from "./config.js";

/** down_proj(act(gate_proj(x)) * up_proj(x)) */
export class LlamaMLP extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  act_fn: ActivationModule;

  constructor(config: { hidden_size: number; intermediate_size: number; hidden_act: string; mlp_bias?: boolean }) {
    super();
    const bias = config.mlp_bias ?? false;
    this.gate_proj = new Linear(config.hidden_size, config.intermediate_size, { bias });
    this.up_proj = new Linear(config.hidden_size, config.intermediate_size, { bias });
    this.down_proj = new Linear(config.intermediate_size, config.hidden_size, { bias });
    this.act_fn = activation(config.hidden_act);
  }

  forward(x: Tensor): Tensor {
    return tidy(() => this.down_proj.forward(this.act_fn.forward(this.gate_proj.forward(x)).mul(this.up_proj.forward(x))));
  }
}

/** Per-forward context shared by every layer. */
export interface LayerContext {
  cos: Tensor;
  sin: Tensor;
  mask: CausalMask;
  cache: KVCache | null;
}

export class LlamaAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  readonly layerIdx: number;
  readonly headDim: number;
  readonly attentionDropout: number;

  constructor(config: LlamaConfig, layerIdx: number) {
    super();
    this.layerIdx = layerIdx;
    this.headDim = config.head_dim;
    this.attentionDropout = config.attention_dropout;
    const bias = config.attention_bias;
    const { hidden_size: hidden, num_attention_heads: heads, num_key_value_heads: kvHeads, head_dim: headDim } = config;
    this.q_proj = new Linear(hidden, heads * headDim, { bias });
    this.k_proj = new Linear(hidden, kvHeads * headDim, { bias });
    this.v_proj = new Linear(hidden, kvHeads * headDim, { bias });
    this.o_proj = new Linear(heads * headDim, hidden, { bias });
  }

  forward(hidden: Tensor, ctx: LayerContext): Tensor {
    return tidy(() => {
      const [batch, length] = hidden.shape;
      // [batch, seq, heads * head_dim] -> [batch, heads, seq, head_dim]
      const heads = (x: Tensor) => x.view(batch, length, -1, this.headDim).transpose(1, 2);
      const rotated = applyRotaryPosEmb(heads(this.q_proj.forward(hidden)), heads(this.k_proj.forward(hidden)), ctx.cos, ctx.sin);
      let key = rotated.k;
      let value = heads(this.v_proj.forward(hidden));
      if (ctx.cache) ({ key, value } = ctx.cache.update(key, value, this.layerIdx));
      const attended = causalAttention(rotated.q, key, value, ctx.mask, {
        scale: 1 / Math.sqrt(this.headDim),
        dropoutP: this.training ? this.attentionDropout : 0,
      });
      return this.o_proj.forward(attended);
    });
  }
}

export class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention;
  mlp: LlamaMLP;
  input_layernorm: RMSNorm;
  post_attention_layernorm: RMSNorm;

  constructor(config: LlamaConfig, layerIdx: number) {
    super();
    this.self_attn = new LlamaAttention(config, layerIdx);
    this.mlp = new LlamaMLP(config);
    this.input_layernorm = new RMSNorm(config.hidden_size, { eps: config.rms_norm_eps });
    this.post_attention_layernorm = new RMSNorm(config.hidden_size, { eps: config.rms_norm_eps });
  }

  forward(hidden: Tensor, ctx: LayerContext): Tensor {
    return tidy(() => {
      const afterAttention = hidden.add(this.self_attn.forward(this.input_layernorm.forward(hidden), ctx));
      return afterAttention.add(this.mlp.forward(this.post_attention_layernorm.forward(afterAttention)));
    });
  }
}

export interface DecoderInputs {
  input_ids?: Tensor;
  inputs_embeds?: Tensor;
  attention_mask?: Tensor | null;
  position_ids?: Tensor;
  past_key_values?: KVCache | null;
  use_cache?: boolean;
  output_hidden_states?: boolean;
}

/** Checks input_ids / inputs_embeds and returns the embeddings (a new tensor, or an alias of inputs_embeds). */
export function embedInputs(embed: Embedding, inputs: DecoderInputs): Tensor {
  if ((inputs.input_ids === undefined) === (inputs.inputs_embeds === undefined)) {
    throw new Error("forward() needs exactly one of input_ids and inputs_embeds");
  }
  if (inputs.inputs_embeds) return inputs.inputs_embeds.alias();
  const ids = inputs.input_ids!;
  if (ids.ndim !== 2) throw new Error(`input_ids must be [batch, seq], got [${ids.shape}]`);
  return embed.forward(ids);
}

/** Position ids [1, seq] = past .. past + seq - 1 (transformers' default when none are given). */
export function defaultPositionIds(pastLength: number, length: number, device: string): Tensor {
  return tidy(() => arange(pastLength, pastLength + length, 1, { device }).unsqueeze(0));
}

/** The decoder stack without the LM head (transformers' LlamaModel). */
export class LlamaModel extends Module {
  embed_tokens: Embedding;
  layers: ModuleList<LlamaDecoderLayer>;
  norm: RMSNorm;
  rotary_emb: RotaryEmbedding;
  readonly config: LlamaConfig;

  constructor(config: LlamaConfig) {
    super();
    this.config = config;
    this.embed_tokens = new Embedding(config.vocab_size, config.hidden_size, { paddingIdx: config.pad_token_id ?? undefined });
    this.layers = new ModuleList(Array.from({ length: config.num_hidden_layers }, (_, i) => new LlamaDecoderLayer(config, i)));
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
    const mask = buildCausalMask({ batchSize: batch, queryLength: length, pastLength, attentionMask: inputs.attention_mask, device: hidden.device, dtype });
    const ctx: LayerContext = { cos, sin, mask, cache };
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
      disposeCausalMask(mask);
    }
  }
}

/** Llama with its LM head; lm_head shares the embedding matrix when tie_word_embeddings. */
export class LlamaForCausalLM extends Module {
  model: LlamaModel;
  lm_head: Linear;
  readonly config: LlamaConfig;

  constructor(config: LlamaConfig) {
    super();
    this.config = config;
    this.model = new LlamaModel(config);
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
