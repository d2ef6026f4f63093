"""Adaptation benchmarks on the LLaVA-1.5-7B-shaped checkpoint, transformers + PEFT side (bench/adapt7b.ts is
the vlmkit side; bench/llava7b_transformers.py makes the checkpoint).

  python3 bench/adapt7b_transformers.py lora DIR   # LoRA SFT steps: tokens/s and peak GPU memory
  python3 bench/adapt7b_transformers.py head DIR   # head training, the backbone re-run every epoch

Both print JSON lines. The work matches bench/adapt7b.ts: bf16 weights, bf16 autocast, SDPA attention,
fused AdamW (the Trainer's default optimizer on CUDA), no gradient checkpointing.
"""
import json
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlavaForConditionalGeneration

from llava7b_transformers import IMAGE_TOKEN, IMAGE_TOKENS

LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
LORA_BATCH, LORA_TEXT, LORA_WARMUP, LORA_STEPS = 4, 128, 3, 10
HEAD_SAMPLES, HEAD_CLASSES, HEAD_TEXT, HEAD_BATCH, HEAD_EPOCHS_RUN = 2000, 10, 16, 32, 2


def report(bench, **figures):
    print(json.dumps({"bench": bench, "impl": "transformers", **figures}), flush=True)


def load(folder):
    model = LlavaForConditionalGeneration.from_pretrained(folder, dtype=torch.bfloat16, attn_implementation="sdpa", device_map="cuda")
    torch.cuda.synchronize()
    return model


def rows(batch, text_tokens, seed):
    """[batch, 1 + 576 + text_tokens - 1] ids (one text token, the image, the rest of the text) and pixels."""
    g = torch.Generator(device="cuda").manual_seed(seed)
    text = torch.randint(0, 32000, (batch, text_tokens), generator=g, device="cuda")
    ids = torch.cat([text[:, :1], torch.full((batch, IMAGE_TOKENS), IMAGE_TOKEN, device="cuda"), text[:, 1:]], dim=1)
    pixels = torch.randn(batch, 3, 336, 336, generator=g, device="cuda").to(torch.bfloat16)
    return ids, pixels


def lora(folder):
    model = load(folder)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=LORA_TARGETS))
    trainable, total = model.get_nb_trainable_parameters()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=True)
    ids, pixels = rows(LORA_BATCH, LORA_TEXT, 0)
    mask = torch.ones_like(ids)
    labels = ids.masked_fill(ids == IMAGE_TOKEN, -100)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, pixel_values=pixels, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    for _ in range(LORA_WARMUP):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(LORA_STEPS):
        loss = step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / LORA_STEPS
    report("lora_sft_7b", secondsPerStep=seconds, tokensPerSecond=ids.numel() / seconds, peakGiB=torch.cuda.max_memory_allocated() / 2**30,
           trainable=trainable, total=total, loss=float(loss))


def head(folder):
    """The usual Python loop: every epoch runs the frozen backbone again, then the head (timed for 2 epochs)."""
    model = load(folder)
    model.requires_grad_(False)
    model.eval()
    hidden = model.config.text_config.hidden_size
    torch.manual_seed(0)
    classifier = torch.nn.Sequential(torch.nn.Linear(hidden, 512), torch.nn.LayerNorm(512), torch.nn.GELU(), torch.nn.Dropout(0.1),
                                     torch.nn.Linear(512, HEAD_CLASSES)).cuda()
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=1e-3, fused=True)
    ids, pixels = rows(HEAD_SAMPLES, HEAD_TEXT, 1)
    targets = torch.randint(0, HEAD_CLASSES, (HEAD_SAMPLES,), device="cuda", generator=torch.Generator(device="cuda").manual_seed(2))
    torch.cuda.synchronize()
    start = time.perf_counter()
    for epoch in range(HEAD_EPOCHS_RUN):
        order = torch.randperm(HEAD_SAMPLES, device="cuda", generator=torch.Generator(device="cuda").manual_seed(epoch))
        for s in range(0, HEAD_SAMPLES, HEAD_BATCH):
            index = order[s:s + HEAD_BATCH]
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
                features = model.model(input_ids=ids[index], pixel_values=pixels[index]).last_hidden_state[:, -1].float()
            loss = torch.nn.functional.cross_entropy(classifier(features), targets[index])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    report("head_rerun_backbone", epochsRun=HEAD_EPOCHS_RUN, secondsPerEpoch=seconds / HEAD_EPOCHS_RUN, seconds10Epochs=seconds / HEAD_EPOCHS_RUN * 10,
           samples=HEAD_SAMPLES, loss=float(loss))


if __name__ == "__main__":
    {"lora": lora, "head": head}[sys.argv[1]](sys.argv[2])
