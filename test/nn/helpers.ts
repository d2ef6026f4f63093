// Test helpers for nn: float64 JS references and a central-difference gradient check.
import assert from "node:assert/strict";
import { Tensor, tidy, noGrad, autograd, tensor, randn } from "../../src/index.js";

export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what = "value"): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    const scale = Math.max(1, Math.abs(expected[i]));
    if (!(diff <= tolerance * scale)) {
      assert.fail(`${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (diff ${diff}, tolerance ${tolerance})`);
    }
  }
}

export const values = (t: Tensor): number[] => t.dataAsNumbers();

/**
 * Compares autograd's gradient of loss() with respect to each tensor in params against central differences
 * (float64 tensors; each element is perturbed in place by +-eps under noGrad and restored).
 */
export function gradcheck(loss: () => Tensor, params: Tensor[], options: { eps?: number; tolerance?: number; what?: string } = {}): void {
  const eps = options.eps ?? 1e-6;
  const tolerance = options.tolerance ?? 1e-6;
  for (const p of params) assert.equal(p.dtype, "float64", "gradcheck needs float64 tensors");
  const analytic = tidy(() => {
    const grads = autograd.grad(loss(), params);
    return grads.map((g, i) => (g === null ? new Array<number>(params[i].numel()).fill(0) : values(g)));
  });
  params.forEach((p, index) => {
    const numeric: number[] = [];
    noGrad(() =>
      tidy(() => {
        const flat = p.view(-1);
        const original = values(flat);
        for (let i = 0; i < original.length; i++) {
          const element = flat.select(0, i);
          element.fill_(original[i] + eps);
          const plus = loss().item();
          element.fill_(original[i] - eps);
          const minus = loss().item();
          element.fill_(original[i]);
          element.dispose();
          numeric.push((plus - minus) / (2 * eps));
        }
      }),
    );
    assertClose(analytic[index], numeric, tolerance, `${options.what ?? "gradient"} of input ${index}`);
  });
}

/** A scalar loss sum(out * projection) with a fixed random projection, so every output element matters. */
export function projectedLoss(forward: () => Tensor): () => Tensor {
  let projection: Tensor | null = null;
  return () => {
    const out = forward();
    if (projection === null) projection = noGrad(() => randn(out.shape, { dtype: out.dtype }).keep());
    return out.mul(projection).sum();
  };
}

/** erf(x) by its Maclaurin series (accurate to ~1e-12 for |x| <= 3). */
export function erf(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export const geluExact = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export interface ConvReferenceOptions {
  stride: number[];
  /** Zero padding before each spatial dim. */
  padBefore: number[];
  /** Zero padding after each spatial dim. */
  padAfter: number[];
  dilation: number[];
  groups: number;
}

/**
 * Direct 3-d convolution (cross-correlation, as torch) of x [N, C, D, H, W] with w [O, C/groups, KD, KH, KW].
 * Conv1d/2d are the special cases with leading unit spatial dims. Returns flat output and its shape.
 */
export function conv3dReference(
  x: number[], xShape: number[], w: number[], wShape: number[], bias: number[] | null, o: ConvReferenceOptions,
): { out: number[]; shape: number[] } {
  const [N, C, D, H, W] = xShape;
  const [O, Cg, KD, KH, KW] = wShape;
  const inSize = [D, H, W];
  const kernel = [KD, KH, KW];
  const outSize = inSize.map((n, i) => Math.floor((n + o.padBefore[i] + o.padAfter[i] - o.dilation[i] * (kernel[i] - 1) - 1) / o.stride[i]) + 1);
  const [OD, OH, OW] = outSize;
  const outPerGroup = O / o.groups;
  const out = new Array<number>(N * O * OD * OH * OW).fill(0);
  const at = (n: number, c: number, d: number, h: number, ww: number) => {
    if (d < 0 || d >= D || h < 0 || h >= H || ww < 0 || ww >= W) return 0;
    return x[(((n * C + c) * D + d) * H + h) * W + ww];
  };
  for (let n = 0; n < N; n++)
    for (let oc = 0; oc < O; oc++) {
      const group = Math.floor(oc / outPerGroup);
      for (let od = 0; od < OD; od++)
        for (let oh = 0; oh < OH; oh++)
          for (let ow = 0; ow < OW; ow++) {
            let acc = bias ? bias[oc] : 0;
            for (let ci = 0; ci < Cg; ci++)
              for (let kd = 0; kd < KD; kd++)
                for (let kh = 0; kh < KH; kh++)
                  for (let kw = 0; kw < KW; kw++) {
                    const d = od * o.stride[0] - o.padBefore[0] + kd * o.dilation[0];
                    const h = oh * o.stride[1] - o.padBefore[1] + kh * o.dilation[1];
                    const ww = ow * o.stride[2] - o.padBefore[2] + kw * o.dilation[2];
                    acc += at(n, group * Cg + ci, d, h, ww) * w[(((oc * Cg + ci) * KD + kd) * KH + kh) * KW + kw];
                  }
            out[(((n * O + oc) * OD + od) * OH + oh) * OW + ow] = acc;
          }
    }
  return { out, shape: [N, O, OD, OH, OW] };
}

/** A float64 tensor from a flat array. */
export function f64(data: number[], shape: number[]): Tensor {
  return tensor(Float64Array.from(data), { shape });
}
