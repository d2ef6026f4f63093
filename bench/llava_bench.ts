// What the LLaVA-shaped benchmarks share: the checkpoint's shape, JSON-line reports and synthetic rows.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cat, cuda, full, manualSeed, randint, randn, tidy, type DType, type Tensor } from "../src/index.js";

export const device = process.env.BENCH_DEVICE ?? "cuda";
export const onCuda = device.startsWith("cuda");

/** Sizes from the checkpoint's config, so the scripts also run on a tiny fixture (BENCH_DEVICE=cpu) as a check. */
export function llavaShape(folder: string) {
  const config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
  const imageToken: number = config.image_token_index ?? config.image_token_id;
  return {
    config,
    imageToken,
    imageTokens: config.image_seq_length as number,
    imageSize: config.vision_config.image_size as number,
    textVocab: Math.min(32000, imageToken),
  };
}
export type LlavaShape = ReturnType<typeof llavaShape>;

export const sync = () => { if (onCuda) cuda.synchronize(); };

export function report(bench: string, figures: Record<string, number | string>): void {
  console.log(JSON.stringify({ bench, impl: "vlmkit", ...figures }));
}

/** [batch, 1 + image tokens + textTokens - 1] ids (one text token, the image, the rest of the text) and pixels. */
export function llavaRows(shape: LlavaShape, batch: number, textTokens: number, seed: number, pixelDType: DType): { ids: Tensor; pixels: Tensor } {
  manualSeed(seed);
  return tidy(() => {
    const text = randint(0, shape.textVocab, [batch, textTokens], { device });
    const ids = cat([text.slice(1, 0, 1), full([batch, shape.imageTokens], shape.imageToken, { dtype: "int64", device }), text.slice(1, 1)], 1);
    return { ids, pixels: randn([batch, 3, shape.imageSize, shape.imageSize], { device }).to(pixelDType) };
  });
}
