// Reading the image fixtures that tools/reference/fixtures_image.py writes (fixtures/images/).
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** fixtures/images/ of the repository (tests run from dist/test/data/). */
export const IMAGE_FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), "../../../fixtures/images");
export const GOLDENS_PATH = resolve(IMAGE_FIXTURES, "processor_goldens.safetensors");
export const goldensMissing = !existsSync(GOLDENS_PATH) && "run tools/reference/make_fixtures.py (fixtures/images/processor_goldens.safetensors is missing)";

export interface GoldenArray {
  dtype: string;
  shape: number[];
  data: Uint8Array | Float32Array;
}

/** A minimal safetensors reader (header JSON + raw little-endian data) for U8 and F32 tensors. */
export function readSafetensors(path: string): Map<string, GoldenArray> {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + headerLength;
  const out = new Map<string, GoldenArray>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [start, end] = entry.data_offsets;
    const raw = bytes.subarray(base + start, base + end);
    const copy = new Uint8Array(raw); // aligned copy
    if (entry.dtype === "U8") out.set(name, { dtype: "U8", shape: entry.shape, data: copy });
    else if (entry.dtype === "F32") out.set(name, { dtype: "F32", shape: entry.shape, data: new Float32Array(copy.buffer, 0, copy.length / 4) });
    else throw new Error(`${path}: tensor ${name} has dtype ${entry.dtype}; this reader handles U8 and F32`);
  }
  return out;
}

export interface GoldensMeta {
  files: string[];
  backends: Record<string, Record<string, string>>;
  restart_markers: Record<string, boolean>;
}

export function readGoldensMeta(): GoldensMeta {
  return JSON.parse(readFileSync(resolve(IMAGE_FIXTURES, "processor_goldens.json"), "utf8")) as GoldensMeta;
}
