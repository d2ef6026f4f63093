// The adapters vlmkit writes for tools/reference/check_peft_loads.py (fixtures/lora-ours/), which loads them
// into PEFT and records PEFT's logits; test/adapt/peft_roundtrip.test.ts compares ours with those.
// Made by tools/make_our_adapter.mjs from fixed seeds. Each one exercises a different part of the config:
//   llava-mixed        vision LoRA r2/a4 on q,k + projector in full (modules_to_save) + language rsLoRA r4/a8
//                      on q,v,o: rank_pattern, alpha_pattern (rsLoRA folded into alpha), a scoped regex
//   llava-lang-layer1  language LoRA r8/a16 on every projection of layer 1 only (exact-path target_modules)
//   llama-mlp          a causal LM, q,v,gate,up,down: a plain list of names
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { manualSeed, noGrad, randnLike, tidy } from "../../src/torch/index.js";
import type { Module } from "../../src/torch/nn/index.js";
import { loadPretrained } from "../../src/models/index.js";
import { adaptModel, loraLayers, saveAdapter, type AdaptationPlan } from "../../src/adapt/index.js";

export interface OurAdapter {
  name: string;
  /** The base fixture, relative to the repository root. */
  base: string;
  /** forward() argument -> key in the base fixture's goldens.safetensors. */
  inputs: Record<string, string>;
  plan: AdaptationPlan;
  seed: number;
}

const LLAVA_INPUTS = { input_ids: "inputs.input_ids", attention_mask: "inputs.attention_mask", pixel_values: "inputs.pixel_values" };
const LLAMA_INPUTS = { input_ids: "forward.input_ids", attention_mask: "forward.attention_mask" };

export const OUR_ADAPTERS: OurAdapter[] = [
  {
    name: "llava-mixed",
    base: "fixtures/llava-layer-int",
    inputs: LLAVA_INPUTS,
    seed: 21,
    plan: {
      vision: { mode: "lora", r: 2, alpha: 4, targetModules: ["q_proj", "k_proj"] },
      projector: { mode: "full" },
      language: { mode: "lora", r: 4, alpha: 8, rslora: true, targetModules: ["q_proj", "v_proj", "o_proj"] },
    },
  },
  {
    name: "llava-lang-layer1",
    base: "fixtures/llava-layer-int",
    inputs: LLAVA_INPUTS,
    seed: 22,
    plan: { language: { mode: "lora", r: 8, alpha: 16, dropout: 0.05, targetModules: "layers\\.1\\.(self_attn\\.(q|k|v|o)_proj|mlp\\.(gate|up|down)_proj)" } },
  },
  {
    name: "llama-mlp",
    base: "fixtures/llama-gqa-untied",
    inputs: LLAMA_INPUTS,
    seed: 23,
    plan: { language: { mode: "lora", r: 4, alpha: 8, targetModules: ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"] } },
  },
];

/** Gives every adapter random nonzero weights (B included) and nudges fully trained parameters, from a seed. */
export function randomizeAdapter(model: Module, seed: number): void {
  manualSeed(seed);
  noGrad(() =>
    tidy(() => {
      for (const [, layer] of loraLayers(model)) {
        layer.lora_A.weight.copy_(randnLike(layer.lora_A.weight).mul(0.1));
        layer.lora_B.weight.copy_(randnLike(layer.lora_B.weight).mul(0.1));
      }
      for (const [name, p] of model.namedParameters()) {
        if (p.requiresGrad && !/\.lora_[AB]\.weight$/.test(name)) p.copy_(p.add(randnLike(p).mul(0.05)));
      }
    }),
  );
}

/** Builds each adapter on its base fixture and writes it (PEFT format) under outDir, with manifest.json. */
export async function makeOurAdapters(outDir: string, log: (line: string) => void = console.log): Promise<void> {
  mkdirSync(outDir, { recursive: true });
  for (const spec of OUR_ADAPTERS) {
    const model = await loadPretrained(spec.base);
    adaptModel(model, spec.plan);
    randomizeAdapter(model, spec.seed);
    saveAdapter(model, join(outDir, spec.name), spec.base);
    log(`${join(outDir, spec.name)}: ${loraLayers(model).length} LoRA layers`);
    model.dispose();
  }
  const manifest = { adapters: OUR_ADAPTERS.map((a) => ({ name: a.name, dir: a.name, base: a.base, inputs: a.inputs })) };
  writeFileSync(join(outDir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
}
