// bf16 parity with transformers on a random Llama (made by bench/bf16_parity_transformers.py in the same call):
// vlmkit bf16 against transformers bf16 and fp32, beside transformers' own bf16-vs-fp32 agreement.
// Usage: node dist/bench/bf16_parity.js DIR   (BENCH_DEVICE=cpu to try it on a small folder)
import { join } from "node:path";
import { F, noGrad, readSafetensors, tidy, type Tensor } from "../src/index.js";
import { loadPretrained, type CausalLM } from "../src/models/index.js";

const folder = process.argv[2];
const device = process.env.BENCH_DEVICE ?? "cuda";
const reference = readSafetensors(join(folder, "reference_logits.safetensors"), { device });
const ids = reference.get("input_ids")!;

function agreement(a: Tensor, b: Tensor): Record<string, number> {
  return tidy(() => {
    const cosine = F.cosineSimilarity(a, b, -1);
    return { argmaxAgreement: a.argmax(-1).eq(b.argmax(-1)).float().mean().item(), cosineMean: cosine.mean().item(), cosineMin: cosine.min().item() };
  });
}

const report: Record<string, Record<string, number>> = {};
for (const dtype of ["float32", "bfloat16"] as const) {
  const model = await loadPretrained<CausalLM>(folder, { device, dtype });
  const logits = noGrad(() => tidy(() => (model.forward({ input_ids: ids }) as { logits: Tensor }).logits.float()));
  report[`vlmkit_${dtype}_vs_transformers_fp32`] = agreement(logits, reference.get("logits_fp32")!);
  report[`vlmkit_${dtype}_vs_transformers_bf16`] = agreement(logits, reference.get("logits_bf16")!);
  logits.dispose();
  model.dispose();
}
report.transformers_bf16_vs_transformers_fp32 = agreement(reference.get("logits_bf16")!, reference.get("logits_fp32")!);
for (const [name, figures] of Object.entries(report)) console.log(JSON.stringify({ bench: "bf16_parity_llama", impl: name, ...figures }));
