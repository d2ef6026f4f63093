"""Make every fixture and golden in one go (run on the reference machine: torch, transformers 5, peft,
tokenizers, safetensors, numpy, PIL):

    python3 tools/reference/make_fixtures.py fixtures

Runs, in order, the main(out_dir) of each part that sits beside this file: fixtures_tokenizer (the shared
tiny tokenizers the model fixtures copy), fixtures_image, fixtures_text, fixtures_vision, fixtures_lora (PEFT
adapters on the text and vision fixtures). A part whose
file is absent is skipped with a note; a part that fails stops the run. Every part seeds itself, so the
output is the same on every run.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path

PARTS = ("fixtures_tokenizer", "fixtures_image", "fixtures_text", "fixtures_vision", "fixtures_lora")


def main(out_dir: str = "fixtures") -> None:
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    import torch
    import transformers

    print(f"fixtures into {out.resolve()} (torch {torch.__version__}, transformers {transformers.__version__})")
    for name in PARTS:
        if importlib.util.find_spec(name) is None:
            print(f"- {name}: not present, skipped")
            continue
        module = importlib.import_module(name)
        started = time.time()
        print(f"- {name}")
        module.main(str(out))
        print(f"  done in {time.time() - started:.1f} s")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"total size of {out}: {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures")
