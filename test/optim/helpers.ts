// Shared by the optimizer tests: the device under test, deterministic float32-exact values, and tensor
// round trips that stand in for a safetensors + JSON checkpoint.
import { Tensor, fromBuffer, tensor } from "../../src/torch/index.js";
import { seededRandom } from "../../src/torch/seeded_random.js";

/** Tests run on VLMKIT_TEST_DEVICE ("cpu" unless set; "cuda" exercises the fused AdamW kernel). */
export const device = process.env.VLMKIT_TEST_DEVICE ?? "cpu";

/** Deterministic values in [-scale, scale), each exactly representable in float32 (mulberry32). */
export function values(seed: number, count: number, scale = 1): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, () => Math.fround((random() * 2 - 1) * scale));
}

export const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** A float32 leaf parameter on the test device. */
export function parameter(data: number[], shape: number[]): Tensor {
  return tensor(Float32Array.from(data), { shape, device }).requiresGrad_().keep();
}

/** Sets param.grad to the given values (the temporary handle is freed; the grad lives on the parameter). */
export function setGrad(param: Tensor, data: number[]): void {
  const grad = tensor(Float32Array.from(data), { shape: param.shape, device });
  param.grad = grad;
  grad.dispose();
}

export function valuesOf(t: Tensor): number[] {
  return Array.from(t.data() as Float32Array);
}

/** Asserts |actual - expected| <= atol + rtol * |expected| elementwise, naming the first element that is off. */
export function assertClose(actual: number[], expected: number[], what: string, rtol = 1e-5, atol = 1e-6): void {
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    if (!(error <= atol + rtol * Math.abs(expected[i]))) {
      throw new Error(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (error ${error})`);
    }
  }
}

/** A checkpoint stand-in: each tensor's bytes copied to the host and back, as a safetensors file would. */
export function roundTripTensors(tensors: Record<string, Tensor>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = t.data();
    out[name] = fromBuffer(bytes, t.shape, t.dtype, { device: t.device });
  }
  return out;
}

/** The JSON part of a checkpoint. */
export function roundTripJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
