"""bf16 parity baseline, transformers side: a random Llama (1024 wide, 8 layers, GQA) saved in fp32, with its
fp32 and bf16 logits on a fixed input, so bench/bf16_parity.ts can compare vlmkit's bf16 logits with both and
with transformers' own bf16-vs-fp32 agreement.   python3 bench/bf16_parity_transformers.py DIR
"""
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

folder = sys.argv[1]
torch.manual_seed(0)
config = LlamaConfig(hidden_size=1024, intermediate_size=2816, num_hidden_layers=8, num_attention_heads=16,
                     num_key_value_heads=8, vocab_size=32000, max_position_embeddings=2048, tie_word_embeddings=False)
model = LlamaForCausalLM(config).eval()
model.save_pretrained(folder)
ids = torch.randint(0, 32000, (2, 512), generator=torch.Generator().manual_seed(1))
with torch.inference_mode():
    fp32 = model.cuda()(input_ids=ids.cuda()).logits.float().cpu()
    bf16 = model.to(torch.bfloat16)(input_ids=ids.cuda()).logits.float().cpu()
save_file({"input_ids": ids, "logits_fp32": fp32, "logits_bf16": bf16}, f"{folder}/reference_logits.safetensors")
