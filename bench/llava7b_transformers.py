"""LLaVA-1.5-7B-shaped benchmark, transformers side; also makes the random checkpoint both sides load.

  python3 bench/llava7b_transformers.py make DIR    # random-init LLaVA-1.5-7B shapes, bf16, sharded safetensors
  python3 bench/llava7b_transformers.py bench DIR   # forward throughput + greedy decode, JSON lines
"""
import json
import resource
import sys
import time

import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

IMAGE_TOKEN = 32000
IMAGE_TOKENS = 576
TEXT_TOKENS = 128


def config():
    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    text = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=32, vocab_size=32064, max_position_embeddings=4096, rms_norm_eps=1e-5)
    return LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMAGE_TOKEN, vision_feature_layer=-2,
                       vision_feature_select_strategy="default", projector_hidden_act="gelu", image_seq_length=IMAGE_TOKENS)


def make(folder):
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlavaForConditionalGeneration(config()).to(torch.bfloat16)
    model.save_pretrained(folder, max_shard_size="4GB")


def inputs(batch, text_tokens=TEXT_TOKENS):
    g = torch.Generator().manual_seed(0)
    text = torch.randint(0, 32000, (batch, text_tokens), generator=g)
    ids = torch.cat([text[:, :1], torch.full((batch, IMAGE_TOKENS), IMAGE_TOKEN), text[:, 1:]], dim=1)
    pixels = torch.randn(batch, 3, 336, 336, generator=g)
    return ids.cuda(), pixels.cuda().to(torch.bfloat16)


def report(bench, **figures):
    print(json.dumps({"bench": bench, "impl": "transformers", **figures}), flush=True)


def bench(folder):
    start = time.perf_counter()
    model = LlavaForConditionalGeneration.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="sdpa", device_map="cuda")
    model.eval()
    load_seconds = time.perf_counter() - start
    report("llava7b_load", seconds=load_seconds, peakHostGiB=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)

    ids, pixels = inputs(16)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        for _ in range(2):
            model.model(input_ids=ids, pixel_values=pixels, attention_mask=mask).last_hidden_state
        torch.cuda.synchronize()
        runs = 5
        start = time.perf_counter()
        for _ in range(runs):
            model.model(input_ids=ids, pixel_values=pixels, attention_mask=mask).last_hidden_state
        torch.cuda.synchronize()
        t = (time.perf_counter() - start) / runs
    report("llava7b_forward_b16", seconds=t, tokensPerSecond=ids.numel() / t)

    # bf16 logits on a fixed input, for the parity check run by bench/llava7b.ts in the same call.
    ids, pixels = inputs(2)
    with torch.inference_mode():
        logits = model(input_ids=ids, pixel_values=pixels, attention_mask=torch.ones_like(ids)).logits
    from safetensors.torch import save_file
    save_file({"logits": logits.float().cpu().contiguous(), "input_ids": ids.cpu().contiguous(), "pixel_values": pixels.cpu().contiguous()},
              "/tmp/llava7b_transformers_logits.safetensors")
    del logits

    new_tokens = 64
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    for batch in (1, 8):
        ids, pixels = inputs(batch, text_tokens=16)
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            model.generate(input_ids=ids, pixel_values=pixels, attention_mask=mask, max_new_tokens=4, do_sample=False)
            torch.cuda.synchronize()
            start = time.perf_counter()
            out = model.generate(input_ids=ids, pixel_values=pixels, attention_mask=mask, max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False)
            torch.cuda.synchronize()
            t = time.perf_counter() - start
        assert out.shape[1] == ids.shape[1] + new_tokens
        report(f"llava7b_greedy_b{batch}", seconds=t, tokensPerSecond=batch * new_tokens / t)
    report("llava7b_peak_gpu", peakGiB=torch.cuda.max_memory_allocated() / 2**30)


if __name__ == "__main__":
    {"make": make, "bench": bench}[sys.argv[1]](sys.argv[2])
