"""Tiny random CLIP, SigLIP and LLaVA checkpoints with golden outputs from transformers.

Run on the reference machine (torch + transformers 5, safetensors, numpy, PIL):

    python3 tools/reference/fixtures_vision.py fixtures

or through tools/reference/make_fixtures.py, which calls main(out_dir). Writes, under out_dir:

    clip/             CLIPModel (text + vision, quick_gelu, 30 px images, 6 px patches: a 5x5 grid)
    clip-vision/      CLIPVisionModel alone (gelu), plus a non-square 24x36 input with interpolate_pos_encoding
    siglip/           SiglipModel (attention-pooling head, 32 px images, 8 px patches), plus a non-square input
    llava-layer-int/  LlavaForConditionalGeneration: CLIP tower + tiny Llama, vision_feature_layer -2, "default"
    llava-layer-list/ the same with vision_feature_layer [-2, -1] and the "full" strategy

Each folder is an HF folder (save_pretrained, safetensors) with goldens.safetensors (float32 / int64 tensors)
and goldens.json (scalars, token lists, the transformers version). Everything is float32, on CPU, seeded.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

SEED = 0


def _seed(offset: int = 0) -> None:
    torch.manual_seed(SEED + offset)
    np.random.seed(SEED + offset)


def _versions() -> dict:
    import transformers

    return {"transformers_version": transformers.__version__, "torch_version": torch.__version__}


def _write_goldens(folder: Path, tensors: dict, meta: dict) -> None:
    cleaned = {}
    for name, value in tensors.items():
        value = value.detach().cpu().clone().contiguous()  # clone: outputs may share storage
        if value.is_floating_point():
            value = value.to(torch.float32)
        cleaned[name] = value
    save_file(cleaned, str(folder / "goldens.safetensors"))
    with open(folder / "goldens.json", "w", encoding="utf-8") as f:
        json.dump({**_versions(), **meta}, f, indent=2, sort_keys=True)
        f.write("\n")


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def _perturb(model, scale: float = 0.05) -> None:
    """Adds seeded noise to every parameter: freshly initialised biases are zeros and norms ones, which would
    let a wrong bias or norm term pass unnoticed."""
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * scale)


def _hidden_states(prefix: str, states) -> dict:
    return {f"{prefix}.hidden_states.{i}": h for i, h in enumerate(states)}


def _test_image(height: int, width: int, seed: int):
    """A deterministic RGB picture (smooth gradients plus noise) as a PIL image."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    red = 255 * xs / max(width - 1, 1)
    green = 255 * ys / max(height - 1, 1)
    blue = 128 + 100 * np.sin(xs / 3.0) * np.cos(ys / 4.0)
    pixels = np.stack([red, green, blue], axis=-1) + rng.normal(0, 12, size=(height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


# ---------------------------------------------------------------------------------------------------------
# CLIP


def _clip_text_inputs(vocab_size: int, eos_token_id: int, pad_token_id: int):
    """Three right-padded rows, each with exactly one eos (the pooled position) and ids below eos elsewhere."""
    lengths = [7, 5, 3]
    seq = max(lengths)
    input_ids = torch.full((len(lengths), seq), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(lengths), seq), dtype=torch.long)
    generator = torch.Generator().manual_seed(SEED + 11)
    for row, length in enumerate(lengths):
        body = torch.randint(3, eos_token_id, (length - 1,), generator=generator)
        input_ids[row, : length - 1] = body
        input_ids[row, length - 1] = eos_token_id
        attention_mask[row, :length] = 1
    return input_ids, attention_mask


def make_clip(out_dir: Path) -> None:
    from transformers import CLIPConfig, CLIPModel

    folder = _fresh(out_dir / "clip")
    _seed(1)
    # eos is the highest id that appears, so the legacy argmax rule and the eos rule pool the same
    # position for the main goldens; pad (id 1) is below it.
    text_config = dict(
        vocab_size=99, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=16, hidden_act="quick_gelu", projection_dim=16,
        bos_token_id=0, pad_token_id=1, eos_token_id=98,
    )
    vision_config = dict(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=30, patch_size=6, num_channels=3, hidden_act="quick_gelu", projection_dim=16,
    )
    config = CLIPConfig(text_config=text_config, vision_config=vision_config, projection_dim=16)
    model = CLIPModel(config).eval()
    _perturb(model)
    model.save_pretrained(folder, safe_serialization=True)

    input_ids, attention_mask = _clip_text_inputs(99, eos_token_id=98, pad_token_id=1)
    pixel_values = torch.randn(2, 3, 30, 30)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, pixel_values=pixel_values,
                    output_hidden_states=True, return_dict=True)
        # The legacy pooling rule (config eos_token_id == 2: argmax of input_ids) on rows whose highest id
        # is not the eos: put a high id early in row 0.
        legacy_ids = input_ids.clone()
        legacy_ids[0, 1] = 97
        legacy_ids[0, 6] = 50
        raw_vision = model.vision_model(pixel_values=pixel_values, return_dict=True)
        raw_text = model.text_model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        model.text_model.eos_token_id = 2
        legacy = model.text_model(input_ids=legacy_ids, attention_mask=attention_mask, return_dict=True)
        model.text_model.eos_token_id = 98
        eos_rule = model.text_model(input_ids=legacy_ids, attention_mask=attention_mask, return_dict=True)

    vision, text = out.vision_model_output, out.text_model_output
    tensors = {
        "inputs.input_ids": input_ids,
        "inputs.attention_mask": attention_mask,
        "inputs.pixel_values": pixel_values,
        "vision.last_hidden_state": vision.last_hidden_state,
        # CLIPModel's tower outputs carry the projected pooled outputs; these are the towers' own.
        "vision.pooler_output": raw_vision.pooler_output,
        "text.last_hidden_state": text.last_hidden_state,
        "text.pooler_output": raw_text.pooler_output,
        "image_embeds": out.image_embeds,
        "text_embeds": out.text_embeds,
        "logits_per_image": out.logits_per_image,
        "logits_per_text": out.logits_per_text,
        "legacy.input_ids": legacy_ids,
        "legacy.pooler_output": legacy.pooler_output,
        "eos_rule.pooler_output": eos_rule.pooler_output,
        **_hidden_states("vision", vision.hidden_states),
        **_hidden_states("text", text.hidden_states),
    }
    _write_goldens(folder, tensors, {
        "model_class": "CLIPModel",
        "vision_hidden_states": len(vision.hidden_states),
        "text_hidden_states": len(text.hidden_states),
        "notes": "pooler_output goldens are the unprojected pooled states; legacy.* pools with eos_token_id=2",
    })


def make_clip_vision(out_dir: Path) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    folder = _fresh(out_dir / "clip-vision")
    _seed(2)
    config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=30, patch_size=6, num_channels=3, hidden_act="gelu", projection_dim=16,
    )
    model = CLIPVisionModel(config).eval()
    _perturb(model)
    model.save_pretrained(folder, safe_serialization=True)

    pixel_values = torch.randn(2, 3, 30, 30)
    # A non-square input: the position grid (5x5) is resized bicubically to 4x6.
    wide_pixels = torch.randn(1, 3, 24, 36)
    with torch.no_grad():
        out = model(pixel_values=pixel_values, output_hidden_states=True, return_dict=True)
        wide = model(pixel_values=wide_pixels, interpolate_pos_encoding=True, output_hidden_states=True, return_dict=True)
    tensors = {
        "inputs.pixel_values": pixel_values,
        "inputs.wide_pixel_values": wide_pixels,
        "last_hidden_state": out.last_hidden_state,
        "pooler_output": out.pooler_output,
        **_hidden_states("", out.hidden_states),
        "wide.last_hidden_state": wide.last_hidden_state,
        "wide.pooler_output": wide.pooler_output,
        **_hidden_states("wide", wide.hidden_states),
    }
    tensors = {k.lstrip("."): v for k, v in tensors.items()}
    _write_goldens(folder, tensors, {"model_class": "CLIPVisionModel", "hidden_states": len(out.hidden_states)})


# ---------------------------------------------------------------------------------------------------------
# SigLIP


def make_siglip(out_dir: Path) -> None:
    from transformers import SiglipConfig, SiglipModel

    folder = _fresh(out_dir / "siglip")
    _seed(3)
    text_config = dict(
        vocab_size=99, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=12, pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    vision_config = dict(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8, num_channels=3,
    )
    config = SiglipConfig(text_config=text_config, vision_config=vision_config)
    model = SiglipModel(config).eval()
    _perturb(model)
    with torch.no_grad():  # transformers initialises both to zero
        model.logit_scale.fill_(2.3)
        model.logit_bias.fill_(-1.5)
    model.save_pretrained(folder, safe_serialization=True)

    generator = torch.Generator().manual_seed(SEED + 31)
    input_ids = torch.randint(3, 99, (2, 9), generator=generator)
    input_ids[1, 6:] = 1  # padded to the right, as SigLIP's tokenizer pads to max_length
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    pixel_values = torch.randn(2, 3, 32, 32)
    wide_pixels = torch.randn(1, 3, 24, 40)
    with torch.no_grad():
        out = model(input_ids=input_ids, pixel_values=pixel_values, output_hidden_states=True,
                    return_loss=True, return_dict=True)
        masked = model.text_model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        wide = model.vision_model(pixel_values=wide_pixels, interpolate_pos_encoding=True,
                                  output_hidden_states=True, return_dict=True)
    vision, text = out.vision_model_output, out.text_model_output
    tensors = {
        "inputs.input_ids": input_ids,
        "inputs.attention_mask": attention_mask,
        "inputs.pixel_values": pixel_values,
        "inputs.wide_pixel_values": wide_pixels,
        "vision.last_hidden_state": vision.last_hidden_state,
        "vision.pooler_output": vision.pooler_output,
        "text.last_hidden_state": text.last_hidden_state,
        "text.pooler_output": text.pooler_output,
        "masked_text.last_hidden_state": masked.last_hidden_state,
        "masked_text.pooler_output": masked.pooler_output,
        "image_embeds": out.image_embeds,
        "text_embeds": out.text_embeds,
        "logits_per_image": out.logits_per_image,
        "logits_per_text": out.logits_per_text,
        "loss": out.loss.reshape(()),
        "wide.last_hidden_state": wide.last_hidden_state,
        "wide.pooler_output": wide.pooler_output,
        **_hidden_states("vision", vision.hidden_states),
        **_hidden_states("text", text.hidden_states),
        **_hidden_states("wide", wide.hidden_states),
    }
    _write_goldens(folder, tensors, {
        "model_class": "SiglipModel",
        "vision_hidden_states": len(vision.hidden_states),
        "text_hidden_states": len(text.hidden_states),
        "loss": float(out.loss),
    })


# ---------------------------------------------------------------------------------------------------------
# LLaVA


IMAGE_TOKEN = "<image>"


def _bpe_tokenizer(out_dir: Path):
    """The shared byte-level BPE tokenizer (fixtures/tokenizer-bpe), with <image> added when it lacks it."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    source = out_dir / "tokenizer-bpe"
    if not (source / "tokenizer.json").exists():
        try:  # the tokenizer part of make_fixtures.py, when it sits beside this file
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import fixtures_tokenizer  # type: ignore

            fixtures_tokenizer.main(str(out_dir))
        except ImportError:
            pass
    if (source / "tokenizer.json").exists():
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(source))
        except Exception:  # a tokenizer.json without a usable tokenizer_config.json
            tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(source / "tokenizer.json"))
    else:
        tokenizer = _fallback_tokenizer()
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:  # never pad with the image token: padding would count as image placeholders
            tokenizer.add_special_tokens({"pad_token": "<pad>"})
    return tokenizer


def _fallback_tokenizer():
    """A small byte-level BPE, used only when fixtures/tokenizer-bpe cannot be made."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "USER: What is in this picture? ASSISTANT: A small red square on a blue field.",
        "Describe the image in detail. The image shows colours, gradients and noise.",
        "hello world, the quick brown fox jumps over the lazy dog 0123456789",
    ] * 20
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def _image_processor(size: int):
    try:
        from transformers import CLIPImageProcessorPil as Processor  # PIL backend: no torchvision needed
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    return Processor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})


def _greedy(model, inputs: dict, steps: int) -> tuple[list[int], float]:
    """Greedy decoding by full re-computation (the reference generate() must equal), with the smallest gap
    between the best and second-best logit seen, so near-ties (which rounding could flip) can be avoided."""
    input_ids = inputs["input_ids"]
    attention_mask = inputs["attention_mask"]
    produced, smallest_gap = [], float("inf")
    with torch.no_grad():
        for _ in range(steps):
            logits = model(input_ids=input_ids, attention_mask=attention_mask,
                           pixel_values=inputs["pixel_values"]).logits[0, -1]
            top = torch.topk(logits, 2)
            smallest_gap = min(smallest_gap, float(top.values[0] - top.values[1]))
            token = int(top.indices[0])
            produced.append(token)
            input_ids = torch.cat([input_ids, torch.tensor([[token]])], dim=1)
            attention_mask = torch.cat([attention_mask, torch.ones((1, 1), dtype=attention_mask.dtype)], dim=1)
    return produced, smallest_gap


def make_llava(out_dir: Path, name: str, vision_feature_layer, strategy: str) -> None:
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    folder = _fresh(out_dir / name)
    tokenizer = _bpe_tokenizer(out_dir)
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    image_size, patch_size = 30, 6
    grid = (image_size // patch_size) ** 2
    image_seq_length = grid if strategy == "default" else grid + 1

    vision_config = dict(
        model_type="clip_vision_model", hidden_size=32, intermediate_size=37, num_hidden_layers=3,
        num_attention_heads=4, image_size=image_size, patch_size=patch_size, projection_dim=16,
        hidden_act="quick_gelu",
    )
    text_config = dict(
        model_type="llama", vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        rms_norm_eps=1e-6, tie_word_embeddings=False, initializer_range=0.1,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    config = LlavaConfig(
        vision_config=vision_config, text_config=text_config, image_token_index=image_token_id,
        image_seq_length=image_seq_length, vision_feature_layer=vision_feature_layer,
        vision_feature_select_strategy=strategy, projector_hidden_act="gelu",
    )
    processor = LlavaProcessor(
        image_processor=_image_processor(image_size), tokenizer=tokenizer, patch_size=patch_size,
        vision_feature_select_strategy=strategy, num_additional_image_tokens=1, image_token=IMAGE_TOKEN,
    )
    images = [_test_image(40, 52, seed=7), _test_image(36, 30, seed=8)]
    prompts = [
        f"USER: {IMAGE_TOKEN}\nWhat is in this picture? ASSISTANT:",
        f"USER: {IMAGE_TOKEN}\nDescribe it. ASSISTANT: A square",
    ]
    tokenizer.padding_side = "right"
    batch = processor(images=images, text=prompts, padding=True, return_tensors="pt")
    single = processor(images=images[:1], text=prompts[:1], return_tensors="pt")
    expanded_counts = [int((row == image_token_id).sum()) for row in batch["input_ids"]]
    assert expanded_counts == [image_seq_length, image_seq_length], expanded_counts

    # Seeds are tried in turn until greedy decoding has no near-tie, so the golden tokens are robust.
    steps = 6
    base_seed = 4 if isinstance(vision_feature_layer, int) else 5
    for attempt in range(20):
        _seed(100 * attempt + base_seed)
        model = LlavaForConditionalGeneration(config).eval()
        _perturb(model)
        greedy, gap = _greedy(model, single, steps)
        if gap > 1e-3:
            break
    else:
        raise RuntimeError(f"{name}: every seed tried gives a near-tie in greedy decoding")
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    for index, image in enumerate(images):
        image.save(folder / f"image{index}.png")

    labels = batch["input_ids"].clone()
    labels[batch["attention_mask"] == 0] = -100
    labels[batch["input_ids"] == image_token_id] = -100

    model.zero_grad()
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                pixel_values=batch["pixel_values"], labels=labels, return_dict=True)
    out.loss.backward()
    grads = {f"grad.{n}": p.grad for n, p in model.named_parameters() if p.grad is not None}
    # Vision layers after the last feature layer (and post_layernorm) do not reach the loss.
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]

    generation = model.generation_config
    generation.eos_token_id = None  # decode exactly `steps` tokens
    generation.pad_token_id = tokenizer.pad_token_id
    generation.max_new_tokens = steps
    generation.do_sample = False
    with torch.no_grad():
        generated = model.generate(**single, generation_config=generation)
    generated_tokens = generated[0, single["input_ids"].shape[1]:].tolist()
    assert generated_tokens == greedy, (generated_tokens, greedy)

    tensors = {
        "inputs.input_ids": batch["input_ids"],
        "inputs.attention_mask": batch["attention_mask"],
        "inputs.pixel_values": batch["pixel_values"],
        "inputs.labels": labels,
        "single.input_ids": single["input_ids"],
        "single.pixel_values": single["pixel_values"],
        "logits": out.logits,
        "loss": out.loss.detach().reshape(()),
        "image_hidden_states": out.image_hidden_states,
        **grads,
    }
    _write_goldens(folder, tensors, {
        "model_class": "LlavaForConditionalGeneration",
        "loss": float(out.loss),
        "greedy_tokens": greedy,
        "greedy_steps": steps,
        "greedy_smallest_gap": gap,
        "image_token_id": image_token_id,
        "image_seq_length": image_seq_length,
        "prompts": prompts,
        "images": [f"image{i}.png" for i in range(len(images))],
        "batch_input_ids": batch["input_ids"].tolist(),
        "single_input_ids": single["input_ids"][0].tolist(),
        "parameter_names": [n for n, _ in model.named_parameters()],
        "parameters_without_grad": no_grad,
        "checkpoint_keys": _checkpoint_keys(folder),
    })


def _checkpoint_keys(folder: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        return sorted(f.keys())


def main(out_dir) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(True)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_default_dtype(torch.float32)
    make_clip(out_dir)
    make_clip_vision(out_dir)
    make_siglip(out_dir)
    make_llava(out_dir, "llava-layer-int", -2, "default")
    make_llava(out_dir, "llava-layer-list", [-2, -1], "full")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "fixtures"))
