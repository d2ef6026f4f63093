// Finite-difference gradient checking (torch.autograd.gradcheck): compares the gradients autograd computes
// with central differences of the function, element by element, in float64.
import { grad, noGrad } from "./autograd.js";
import { fromBuffer } from "./creation.js";
import { seededRandom } from "./seeded_random.js";
import { Tensor, tidy } from "./tensor.js";

export interface GradcheckOptions {
  /** Step of the central difference (f(x + eps) - f(x - eps)) / (2 eps). */
  eps?: number;
  /** An element passes when |analytic - numeric| <= atol + rtol * |numeric|. */
  atol?: number;
  rtol?: number;
  /** Throw an Error naming the worst element on failure (default true); false returns { ok: false, ... }. */
  raiseException?: boolean;
  /** Seed of the random output weights w in sum(fn(...inputs) * w). */
  seed?: number;
}

/** One checked element of one input. */
export interface GradcheckElement {
  /** Position of the input in the inputs array. */
  input: number;
  /** Multi-dimensional index of the element within that input. */
  index: number[];
  analytic: number;
  numeric: number;
  error: number;
  ok: boolean;
}

export interface GradcheckResult {
  ok: boolean;
  /** Largest |analytic - numeric| over all checked elements. */
  maxError: number;
  /** The elements that failed, worst first (empty when ok). */
  details: GradcheckElement[];
  /** The element with the largest error relative to its tolerance, or null if no element was checked. */
  worst: GradcheckElement | null;
  /** Number of elements compared. */
  checked: number;
}

function unravel(flatIndex: number, shape: number[]): number[] {
  const index = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = flatIndex % shape[d];
    flatIndex = Math.floor(flatIndex / shape[d]);
  }
  return index;
}

function describe(e: GradcheckElement): string {
  return `input ${e.input} at [${e.index.join(", ")}]: analytic ${e.analytic}, numeric ${e.numeric}, |difference| ${e.error}`;
}

/**
 * Checks autograd's gradients of fn against central finite differences. The inputs that require grad
 * (float64, on any device) are differentiated; the others (integer targets, masks) are passed unchanged.
 * The scalar checked is L = sum(fn(...inputs) * w) with fixed random weights w, so every output element
 * contributes: the analytic dL/dx comes from autograd.grad, the numeric one from
 * (L(x + eps e_i) - L(x - eps e_i)) / (2 eps) for each element i. fn must be deterministic.
 */
export function gradcheck(fn: (...inputs: Tensor[]) => Tensor, inputs: Tensor[], options: GradcheckOptions = {}): GradcheckResult {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-3;
  const checkedInputs = inputs.flatMap((t, i) => (t.requiresGrad ? [i] : []));
  if (checkedInputs.length === 0) throw new Error("gradcheck: no input requires grad; mark the inputs to check with requiresGrad: true");
  for (const i of checkedInputs) {
    if (inputs[i].dtype !== "float64") {
      throw new Error(`gradcheck: input ${i} is ${inputs[i].dtype}; finite differences need float64 inputs (create them with dtype: "float64" or call .double())`);
    }
  }

  const result = tidy(() => {
    const output = fn(...inputs);
    if (!(output instanceof Tensor)) throw new Error("gradcheck: fn must return a Tensor");
    if (output.dtype !== "float64") throw new Error(`gradcheck: fn returned a ${output.dtype} tensor; it must stay float64 for the check to mean anything`);
    // a generator of its own so the check does not draw from, or disturb, torch's generators
    const uniform = seededRandom(options.seed ?? 1234);
    const weightValues = Float64Array.from({ length: output.numel() }, () => 2 * uniform() - 1);
    const weights = toDevice(fromBuffer(weightValues, output.shape, "float64"), output.device);
    const objective = (out: Tensor) => out.mul(weights).sum();

    // An output with no autograd history does not depend on any checked input: its gradients are zero.
    const analytic = output.requiresGrad
      ? grad(objective(output), checkedInputs.map((i) => inputs[i]), { allowUnused: true })
      : checkedInputs.map(() => null);
    const analyticValues = analytic.map((g, k) => {
      const input = inputs[checkedInputs[k]];
      if (g === null) return new Float64Array(input.numel());
      if (g.shape.join() !== input.shape.join()) {
        throw new Error(`gradcheck: the gradient of input ${checkedInputs[k]} has shape [${g.shape}] but the input has shape [${input.shape}]`);
      }
      return Float64Array.from(g.to("float64").data() as Float64Array);
    });

    const elements: GradcheckElement[] = [];
    noGrad(() => {
      checkedInputs.forEach((inputIndex, k) => {
        const input = inputs[inputIndex];
        const values = Float64Array.from(input.data() as Float64Array);
        const evaluateWith = (flatIndex: number, value: number): number =>
          tidy(() => {
            const saved = values[flatIndex];
            values[flatIndex] = value;
            const perturbed = toDevice(fromBuffer(values, input.shape, "float64"), input.device);
            values[flatIndex] = saved;
            const args = inputs.map((t, i) => (i === inputIndex ? perturbed : t));
            return objective(fn(...args)).item();
          });
        for (let j = 0; j < values.length; j++) {
          const x = values[j];
          const numeric = (evaluateWith(j, x + eps) - evaluateWith(j, x - eps)) / (2 * eps);
          const analyticValue = analyticValues[k][j];
          const error = Math.abs(analyticValue - numeric);
          const ok = error <= atol + rtol * Math.abs(numeric);
          elements.push({ input: inputIndex, index: unravel(j, input.shape), analytic: analyticValue, numeric, error, ok });
        }
      });
    });
    return elements;
  });

  const excess = (e: GradcheckElement) => (Number.isNaN(e.error) ? Infinity : e.error - (atol + rtol * Math.abs(e.numeric)));
  const failed = result.filter((e) => !e.ok).sort((a, b) => excess(b) - excess(a));
  const worst = result.length === 0 ? null : result.reduce((a, b) => (excess(b) > excess(a) ? b : a));
  const maxError = result.reduce((m, e) => Math.max(m, Number.isNaN(e.error) ? Infinity : e.error), 0);
  const outcome: GradcheckResult = { ok: failed.length === 0, maxError, details: failed, worst, checked: result.length };
  if (!outcome.ok && (options.raiseException ?? true)) {
    throw new Error(
      `gradcheck: ${failed.length} of ${result.length} gradient elements differ from finite differences ` +
        `(atol ${atol}, rtol ${rtol}, eps ${eps}); worst: ${describe(failed[0])}`,
    );
  }
  return outcome;
}

function toDevice(t: Tensor, device: string): Tensor {
  return device === "cpu" ? t : t.to(device);
}
