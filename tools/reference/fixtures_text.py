"""Tiny random Llama and Qwen2 checkpoints with golden outputs from transformers.

Run on the reference machine (torch + transformers 5, tokenizers, safetensors):

    python3 tools/reference/fixtures_text.py fixtures

or through tools/reference/make_fixtures.py, which calls main(out_dir). Writes, under out_dir:

    llama-gqa-untied/   4 query heads over 2 key/value heads, untied head, attention and MLP biases,
                        llama3 rope scaling, config.json in the OLD spelling (rope_theta + rope_scaling
                        with "rope_type")
    llama-tied-linear/  tied embeddings, linear rope scaling, no biases, config.json as transformers saves it
    llama-dynamic/      dynamic NTK rope with max_position_embeddings 8 (the inputs are longer, so the
                        frequencies grow), OLD spelling with the oldest key ("type": "dynamic")
    qwen2-tied/         q/k/v biases, tied embeddings, config.json as transformers saves it
    qwen2-sliding/      sliding-window layers (window 4 from layer 1 on), untied

Each folder is an HF folder (save_pretrained, safetensors, the shared tokenizer files copied in when
fixtures/tokenizer-bpe or tokenizer-sp exist) plus:

    goldens.safetensors  forward.input_ids / attention_mask / labels (batch 2, row 1 left-padded),
                         forward.hidden_states.<i> (embeddings .. final norm), forward.logits, forward.loss,
                         grad.<parameter name> (d loss / d parameter, tied weights once),
                         generate.input_ids / attention_mask (left-padded prompts), generate.sequences
                         (greedy, max_new_tokens 8), generate.logits [steps, batch, vocab]
    goldens.json         versions, loss, token lists, eos / pad ids used, which rope spelling config.json has

Everything is float32 on CPU, attention "sdpa", seeded, and computed from the model re-loaded from the
folder, so the goldens describe exactly what is on disk.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

SEED = 1234
MAX_NEW_TOKENS = 8
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "chat_template.jinja")


def _versions() -> dict:
    import transformers

    return {"transformers_version": transformers.__version__, "torch_version": torch.__version__}


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


# ---------------------------------------------------------------------------------------------------------
# tokenizer


def _tokenizer_source(out_dir: Path, kind: str) -> Path | None:
    """fixtures/tokenizer-<kind>, made by fixtures_tokenizer.py (run here when it is missing)."""
    source = out_dir / f"tokenizer-{kind}"
    if not (source / "tokenizer.json").exists():
        try:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            import fixtures_tokenizer  # type: ignore

            fixtures_tokenizer.main(str(out_dir))
        except ImportError:
            return None
    return source if (source / "tokenizer.json").exists() else None


def _tokenizer_facts(source: Path | None) -> dict:
    """Vocabulary size and special ids of the tokenizer (defaults when there is none)."""
    facts = {"vocab_size": 320, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    if source is None:
        return facts
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    facts["vocab_size"] = max(len(tokenizer), 64)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(tokenizer, key, None)
        if value is not None:
            facts[key] = int(value)
    if getattr(tokenizer, "pad_token_id", None) is None:
        facts["pad_token_id"] = facts["eos_token_id"]
    return facts


def _copy_tokenizer(source: Path | None, folder: Path) -> None:
    if source is None:
        return
    for name in TOKENIZER_FILES:
        if (source / name).exists():
            shutil.copy(source / name, folder / name)


# ---------------------------------------------------------------------------------------------------------
# model construction


def _perturb(model) -> None:
    """Make norms and biases non-trivial (transformers initialises them to 1 and 0), so a mistake shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))


def _save(model, folder: Path) -> None:
    """save_pretrained in safetensors (the argument is gone where safetensors is the only format)."""
    try:
        model.save_pretrained(str(folder), safe_serialization=True)
    except TypeError:
        model.save_pretrained(str(folder))
    if not (folder / "model.safetensors").exists() and not (folder / "model.safetensors.index.json").exists():
        raise RuntimeError(f"save_pretrained wrote no safetensors weights into {folder}")


def _rope_to_old_spelling(folder: Path, type_key: str) -> None:
    """Rewrite config.json with rope_theta + rope_scaling (the hub's old spelling) instead of rope_parameters."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    params = dict(config.pop("rope_parameters", None) or config.pop("rope_scaling", None) or {})
    theta = params.pop("rope_theta", config.get("rope_theta", 10000.0))
    rope_type = params.pop("rope_type", params.pop("type", "default"))
    config["rope_theta"] = theta
    config["rope_scaling"] = None if rope_type == "default" else {type_key: rope_type, **params}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _rope_spelling(folder: Path) -> str:
    config = json.loads((folder / "config.json").read_text())
    if config.get("rope_parameters") is not None:
        return "rope_parameters"
    return "rope_scaling" if config.get("rope_scaling") is not None else "rope_theta"


def _reload(folder: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, attn_implementation="sdpa")
    return model.eval()


# ---------------------------------------------------------------------------------------------------------
# inputs


def _random_ids(generator, length: int, facts: dict) -> torch.Tensor:
    """Ids that avoid the special tokens, so no prompt ends early."""
    special = {facts["bos_token_id"], facts["eos_token_id"], facts["pad_token_id"]}
    ids = []
    while len(ids) < length:
        candidate = int(torch.randint(3, facts["vocab_size"], (1,), generator=generator))
        if candidate not in special:
            ids.append(candidate)
    return torch.tensor(ids, dtype=torch.long)


def _left_padded(rows: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, length - len(row):] = row
        attention_mask[i, length - len(row):] = 1
    return input_ids, attention_mask


# ---------------------------------------------------------------------------------------------------------
# goldens


def _goldens(folder: Path, facts: dict, seq_len: int, prompt_lengths: tuple[int, int]) -> tuple[dict, dict]:
    generator = torch.Generator().manual_seed(SEED + 7)
    tensors: dict[str, torch.Tensor] = {}
    meta: dict = {}

    # Forward, loss and gradients: row 0 full length, row 1 left-padded by 3; labels -100 on padding and
    # on row 0's first two tokens (a "prompt" that is not trained on).
    rows = [_random_ids(generator, seq_len, facts), _random_ids(generator, seq_len - 3, facts)]
    input_ids, attention_mask = _left_padded(rows, facts["pad_token_id"])
    labels = input_ids.clone()
    labels[attention_mask == 0] = -100
    labels[0, :2] = -100

    model = _reload(folder)
    out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, output_hidden_states=True, return_dict=True)
    out.loss.backward()
    tensors["forward.input_ids"] = input_ids
    tensors["forward.attention_mask"] = attention_mask
    tensors["forward.labels"] = labels
    for i, h in enumerate(out.hidden_states):
        tensors[f"forward.hidden_states.{i}"] = h
    tensors["forward.logits"] = out.logits
    tensors["forward.loss"] = out.loss.reshape(())
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = p.grad
    meta["loss"] = float(out.loss)
    meta["num_hidden_states"] = len(out.hidden_states)
    meta["parameter_names"] = [name for name, _ in model.named_parameters()]
    del model, out

    # Greedy generation from left-padded prompts, on a freshly loaded model (dynamic rope keeps state).
    prompts = [_random_ids(generator, n, facts) for n in prompt_lengths]
    gen_ids, gen_mask = _left_padded(prompts, facts["pad_token_id"])
    model = _reload(folder)
    with torch.no_grad():
        result = model.generate(
            input_ids=gen_ids, attention_mask=gen_mask, max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
            eos_token_id=facts["eos_token_id"], pad_token_id=facts["pad_token_id"],
            output_logits=True, return_dict_in_generate=True,
        )
    tensors["generate.input_ids"] = gen_ids
    tensors["generate.attention_mask"] = gen_mask
    tensors["generate.sequences"] = result.sequences
    step_logits = torch.stack([l.float() for l in result.logits], dim=0)
    tensors["generate.logits"] = step_logits
    top2 = step_logits.topk(2, dim=-1).values
    meta["generate"] = {
        "sequences": result.sequences.tolist(),
        "max_new_tokens": MAX_NEW_TOKENS,
        "eos_token_id": facts["eos_token_id"],
        "pad_token_id": facts["pad_token_id"],
        # Smallest gap between the two best logits over all steps: a greedy tie would make tokens fragile.
        "min_top2_gap": float((top2[..., 0] - top2[..., 1]).min()),
    }
    return tensors, meta


def _write(folder: Path, tensors: dict, meta: dict) -> None:
    cleaned = {}
    for name, value in tensors.items():
        value = value.detach().cpu().contiguous()
        cleaned[name] = value.to(torch.float32) if value.is_floating_point() else value
    save_file(cleaned, str(folder / "goldens.safetensors"))
    with open(folder / "goldens.json", "w", encoding="utf-8") as f:
        json.dump({**_versions(), **meta}, f, indent=2, sort_keys=True)
        f.write("\n")


def _make(out_dir: Path, name: str, config, tokenizer_kind: str, spelling: str, seq_len: int = 12,
          prompt_lengths: tuple[int, int] = (6, 4), type_key: str = "rope_type") -> None:
    """Build, perturb and save a model, fix the rope spelling of its config.json, then write goldens."""
    from transformers import AutoModelForCausalLM

    folder = _fresh(out_dir / name)
    torch.manual_seed(SEED)
    model = AutoModelForCausalLM.from_config(config).float().eval()
    _perturb(model)
    _save(model, folder)
    _copy_tokenizer(_tokenizer_source(out_dir, tokenizer_kind), folder)
    saved_spelling = _rope_spelling(folder)
    if spelling == "old":
        _rope_to_old_spelling(folder, type_key)
    # The re-loaded model must be the saved one (same weights, same rope) whatever the spelling.
    reloaded = _reload(folder)
    with torch.no_grad():
        probe = torch.arange(3, 3 + min(seq_len, 10)).unsqueeze(0)
        same = torch.allclose(model(input_ids=probe).logits, reloaded(input_ids=probe).logits, atol=1e-6, rtol=0)
    if not same:
        raise RuntimeError(f"{name}: the model re-loaded from {folder} differs from the one saved")
    del model, reloaded

    facts = _tokenizer_facts(_tokenizer_source(out_dir, tokenizer_kind))
    tensors, meta = _goldens(folder, facts, seq_len, prompt_lengths)
    meta.update({
        "fixture": name,
        "config_rope_spelling": _rope_spelling(folder),
        "transformers_saves_rope_spelling": saved_spelling,
        "seq_len": seq_len,
    })
    _write(folder, tensors, meta)
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"  {name}: {size / 1024:.0f} KiB, loss {meta['loss']:.6f}, config rope spelling {meta['config_rope_spelling']}")


def main(out_dir: str = "fixtures") -> None:
    from transformers import LlamaConfig, Qwen2Config

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bpe = _tokenizer_facts(_tokenizer_source(out, "bpe"))
    sp = _tokenizer_facts(_tokenizer_source(out, "sp"))
    ids = lambda facts: {k: facts[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")}  # noqa: E731
    common = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, initializer_range=0.1)

    _make(out, "llama-gqa-untied", LlamaConfig(
        vocab_size=bpe["vocab_size"], num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=False, attention_bias=True, mlp_bias=True,
        rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
        **ids(bpe), **common,
    ), "bpe", spelling="old")

    _make(out, "llama-tied-linear", LlamaConfig(
        vocab_size=sp["vocab_size"], num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
        tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
        rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
        **ids(sp), **common,
    ), "sp", spelling="new")

    _make(out, "llama-dynamic", LlamaConfig(
        vocab_size=bpe["vocab_size"], num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8,
        tie_word_embeddings=False, rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "factor": 2.0},
        **ids(bpe), **common,
    ), "bpe", spelling="old", type_key="type")

    _make(out, "qwen2-tied", Qwen2Config(
        vocab_size=bpe["vocab_size"], num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **ids(bpe), **common,
    ), "bpe", spelling="new")

    _make(out, "qwen2-sliding", Qwen2Config(
        vocab_size=bpe["vocab_size"], num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=False, use_sliding_window=True, sliding_window=4, max_window_layers=1,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, **ids(bpe), **common,
    ), "bpe", spelling="new")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures")
