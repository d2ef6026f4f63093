"""Loads the LoRA adapters vlmkit wrote into PEFT and records PEFT's outputs, for
test/adapt/peft_roundtrip.test.ts (vlmkit adapter -> PEFT gives the same logits).

    npx tsc -p . && node tools/make_our_adapter.mjs            # writes fixtures/lora-ours/ (any machine)
    python3 tools/reference/check_peft_loads.py fixtures/lora-ours   # reference machine: torch, transformers 5, peft

For each adapter in <folder>/manifest.json: loads its base fixture with transformers (float32, CPU), loads
the adapter folder with PeftModel.from_pretrained, and checks that PEFT holds exactly the file's tensors
(get_peft_model_state_dict has the same keys and values as adapter_model.safetensors: nothing missing,
nothing ignored). Then runs the base fixture's golden inputs and writes

    <folder>/peft_logits.safetensors   <name>.logits (adapter active), <name>.merged_logits (merge_adapter)
    <folder>/peft_report.json          versions, sha256 of each adapter's files (the test refuses stale
                                       outputs), PEFT's LoRA module names and modules_to_save per adapter

Fails loudly (non-zero exit, the adapter and keys named) when PEFT cannot load an adapter exactly.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

REPO_ROOT = Path(__file__).resolve().parents[2]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resolve(path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else REPO_ROOT / candidate


def load_base(folder: Path):
    from transformers import AutoModelForCausalLM, LlavaForConditionalGeneration

    config = json.loads((folder / "config.json").read_text())
    cls = LlavaForConditionalGeneration if config.get("model_type") == "llava" else AutoModelForCausalLM
    return cls.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="sdpa").eval()


def check_adapter(folder: Path, entry: dict) -> tuple[dict, dict]:
    from peft import PeftModel, get_peft_model_state_dict
    from peft.tuners.lora import LoraLayer

    name = entry["name"]
    adapter_dir = folder / entry["dir"]
    base_dir = _resolve(entry["base"])
    goldens = load_file(str(base_dir / "goldens.safetensors"))
    inputs = {arg: goldens[key] for arg, key in entry["inputs"].items()}

    base = load_base(base_dir)
    with torch.no_grad():
        base_logits = base(**inputs).logits.clone()
    model = PeftModel.from_pretrained(base, str(adapter_dir)).eval()

    ours = load_file(str(adapter_dir / "adapter_model.safetensors"))
    held = {k: v.detach().cpu() for k, v in get_peft_model_state_dict(model, save_embedding_layers=False).items()}
    missing = sorted(set(held) - set(ours))
    ignored = sorted(set(ours) - set(held))
    if missing or ignored:
        raise SystemExit(
            f"{name}: PEFT does not hold exactly the file's tensors.\n"
            f"  PEFT has but the file lacks ({len(missing)}): {missing[:10]}\n"
            f"  the file has but PEFT ignored ({len(ignored)}): {ignored[:10]}"
        )
    different = [k for k in ours if not torch.equal(held[k].to(ours[k].dtype), ours[k])]
    if different:
        raise SystemExit(f"{name}: PEFT loaded other values than the file's for {len(different)} tensors: {different[:10]}")

    with torch.no_grad():
        logits = model(**inputs).logits.clone()
        model.merge_adapter()
        merged_logits = model(**inputs).logits.clone()
        model.unmerge_adapter()
    change = float((logits - base_logits).abs().max())
    if change < 1e-4:
        raise SystemExit(f"{name}: the adapter does not change the logits (max change {change}); PEFT may not have applied it")

    lora_modules = sorted(n for n, m in model.base_model.model.named_modules() if isinstance(m, LoraLayer))
    report = {
        "adapter_model.safetensors": _sha256(adapter_dir / "adapter_model.safetensors"),
        "adapter_config.json": _sha256(adapter_dir / "adapter_config.json"),
        "lora_modules": lora_modules,
        "modules_to_save": sorted(model.peft_config["default"].modules_to_save or []),
        "tensors": len(ours),
        "max_logit_change_from_base": change,
    }
    print(f"  {name}: {len(lora_modules)} LoRA layers, {len(ours)} tensors loaded exactly; logits change by up to {change:.4f}")
    return {f"{name}.logits": logits, f"{name}.merged_logits": merged_logits}, report


def main(folder: str) -> None:
    import peft
    import transformers

    root = Path(folder)
    manifest = json.loads((root / "manifest.json").read_text())
    torch.set_default_dtype(torch.float32)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tensors: dict = {}
    reports: dict = {}
    for entry in manifest["adapters"]:
        outputs, report = check_adapter(root, entry)
        tensors.update(outputs)
        reports[entry["name"]] = report
    save_file({k: v.contiguous().to(torch.float32) for k, v in tensors.items()}, str(root / "peft_logits.safetensors"))
    with open(root / "peft_report.json", "w", encoding="utf-8") as f:
        json.dump(
            {
                "torch_version": torch.__version__,
                "transformers_version": transformers.__version__,
                "peft_version": peft.__version__,
                "adapters": reports,
            },
            f,
            indent=2,
            sort_keys=True,
        )
        f.write("\n")
    print(f"wrote {root / 'peft_logits.safetensors'} and {root / 'peft_report.json'}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python3 tools/reference/check_peft_loads.py fixtures/lora-ours")
    main(sys.argv[1])
