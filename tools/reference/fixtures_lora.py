"""LoRA adapters made by PEFT on the tiny fixtures, with golden outputs, for test/adapt/lora.test.ts.

Run on the reference machine (torch, transformers 5, peft, safetensors), after the base fixtures exist:

    python3 tools/reference/fixtures_lora.py fixtures

or through tools/reference/make_fixtures.py, which calls main(out_dir). Writes, under out_dir:

    lora-llava-qv/      llava-layer-int, target_modules ["q_proj", "v_proj"] (a list: PEFT puts LoRA on the
                        vision tower's q/v as well as the language model's), r 4, alpha 8
    lora-llava-lang/    llava-layer-int, a regex over the language model's q/v/gate/up/down, r 4, alpha 8,
                        lora_dropout 0.1, rank_pattern (down_proj r 2), alpha_pattern (one up_proj alpha 16),
                        modules_to_save ["multi_modal_projector"] (the projector saved in full)
    lora-llama-rslora/  llama-gqa-untied, q/v/gate/up/down, r 4, alpha 8, use_rslora

Each folder is what PeftModel.save_pretrained writes (adapter_config.json, adapter_model.safetensors) plus
goldens.safetensors (logits with the adapter, merged_logits after merge_adapter, loss, and grad.<key> for
every adapter tensor, keyed as in adapter_model.safetensors) and goldens.json (versions, the base fixture and
the names of its golden inputs, PEFT's LoRA module names, get_nb_trainable_parameters, the saved keys).
Adapter weights are drawn from a seeded generator (B nonzero) so the adapter changes the outputs; the
projector copy of modules_to_save is perturbed too. Everything is float32 on CPU, in eval mode (dropout off).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

LLAVA_INPUTS = {"input_ids": "inputs.input_ids", "attention_mask": "inputs.attention_mask", "pixel_values": "inputs.pixel_values"}
LLAVA_LABELS = "inputs.labels"
LLAMA_INPUTS = {"input_ids": "forward.input_ids", "attention_mask": "forward.attention_mask"}
LLAMA_LABELS = "forward.labels"

ADAPTERS = [
    {
        "name": "lora-llava-qv",
        "base": "llava-layer-int",
        "inputs": LLAVA_INPUTS,
        "labels": LLAVA_LABELS,
        "seed": 11,
        "config": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
    },
    {
        "name": "lora-llava-lang",
        "base": "llava-layer-int",
        "inputs": LLAVA_INPUTS,
        "labels": LLAVA_LABELS,
        "seed": 12,
        "config": dict(
            r=4,
            lora_alpha=8,
            target_modules=r"model\.language_model\.layers\.\d+\.(self_attn\.(q_proj|v_proj)|mlp\.(gate_proj|up_proj|down_proj))",
            lora_dropout=0.1,
            rank_pattern={"down_proj": 2},
            alpha_pattern={"model.language_model.layers.1.mlp.up_proj": 16},
            modules_to_save=["multi_modal_projector"],
        ),
    },
    {
        "name": "lora-llama-rslora",
        "base": "llama-gqa-untied",
        "inputs": LLAMA_INPUTS,
        "labels": LLAMA_LABELS,
        "seed": 13,
        "config": dict(
            r=4, lora_alpha=8, use_rslora=True, lora_dropout=0.0,
            target_modules=["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    },
]


def _versions() -> dict:
    import peft
    import transformers

    return {"transformers_version": transformers.__version__, "torch_version": torch.__version__, "peft_version": peft.__version__}


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def load_base(folder: Path):
    """The base fixture as transformers loads it (float32, CPU, eval)."""
    from transformers import AutoModelForCausalLM, LlavaForConditionalGeneration

    config = json.loads((folder / "config.json").read_text())
    cls = LlavaForConditionalGeneration if config.get("model_type") == "llava" else AutoModelForCausalLM
    return cls.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="sdpa").eval()


def saved_key(parameter_name: str) -> str:
    """A PeftModel parameter name as save_pretrained writes it (adapter name and the wrapper level dropped)."""
    return parameter_name.replace(".modules_to_save.default.", ".").replace(".default.", ".")


def _lora_module_names(peft_model) -> list[str]:
    from peft.tuners.lora import LoraLayer

    return sorted(name for name, module in peft_model.base_model.model.named_modules() if isinstance(module, LoraLayer))


def make_adapter(out_dir: Path, spec: dict) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    folder = _fresh(out_dir / spec["name"])
    base_folder = out_dir / spec["base"]
    goldens = load_file(str(base_folder / "goldens.safetensors"))
    inputs = {arg: goldens[key] for arg, key in spec["inputs"].items()}
    labels = goldens[spec["labels"]]

    base = load_base(base_folder)
    with torch.no_grad():
        base_logits = base(**inputs).logits.clone()
    config = LoraConfig(task_type="CAUSAL_LM", **spec["config"])
    model = get_peft_model(base, config)
    trainable, total = model.get_nb_trainable_parameters()

    # Seeded adapter weights (B nonzero) and a perturbed modules_to_save copy, in named_parameters order.
    generator = torch.Generator().manual_seed(spec["seed"])
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".lora_A." in name or ".lora_B." in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
            elif ".modules_to_save.default." in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.05)

    model.eval()
    model.zero_grad()
    out = model(**inputs, labels=labels)
    out.loss.backward()
    grads = {f"grad.{saved_key(n)}": p.grad for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    logits = out.logits.detach().clone()
    assert (logits - base_logits).abs().max() > 1e-3, "the adapter does not change the logits"
    with torch.no_grad():
        model.merge_adapter()
        merged_logits = model(**inputs).logits.clone()
        model.unmerge_adapter()

    model.save_pretrained(str(folder), save_embedding_layers=False)
    saved = load_file(str(folder / "adapter_model.safetensors"))
    missing_grads = [k for k in saved if f"grad.{k}" not in grads]

    # PEFT reads its own folder back into a fresh base and gives the same logits.
    reloaded = PeftModel.from_pretrained(load_base(base_folder), str(folder)).eval()
    with torch.no_grad():
        again = reloaded(**inputs).logits
    assert torch.allclose(again, logits, atol=1e-6), f"{spec['name']}: PEFT's reload differs by {(again - logits).abs().max()}"

    tensors = {"logits": logits, "merged_logits": merged_logits, "loss": out.loss.detach().reshape(()), **grads}
    save_file({k: v.detach().cpu().contiguous().to(torch.float32) for k, v in tensors.items()}, str(folder / "goldens.safetensors"))
    meta = {
        **_versions(),
        "base": spec["base"],
        "inputs": spec["inputs"],
        "labels": spec["labels"],
        "seed": spec["seed"],
        "loss": float(out.loss),
        "lora_modules": _lora_module_names(model),
        "trainable_params": trainable,
        "all_params": total,
        "saved_keys": sorted(saved.keys()),
        # adapter tensors that get no gradient (the vision layer after the feature layer)
        "keys_without_grad": sorted(missing_grads),
    }
    with open(folder / "goldens.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"  {spec['name']}: {len(meta['lora_modules'])} LoRA layers, {len(saved)} tensors, trainable {trainable} / {total}")


def main(out_dir) -> None:
    out_dir = Path(out_dir)
    torch.set_grad_enabled(True)
    torch.set_default_dtype(torch.float32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    for spec in ADAPTERS:
        if not (out_dir / spec["base"] / "goldens.safetensors").exists():
            raise FileNotFoundError(f"{out_dir / spec['base']} is missing: run fixtures_text.py / fixtures_vision.py first")
        make_adapter(out_dir, spec)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "fixtures"))
