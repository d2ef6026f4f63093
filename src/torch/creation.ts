// Creating tensors: filled, ranges, random, and from JS arrays, TypedArrays and Buffers.
import { native } from "./native.js";
import { Tensor, toDType, type DType, type DTypeLike, type DeviceLike, type NestedArray, type Scalar } from "./tensor.js";

export interface CreateOptions {
  dtype?: DTypeLike;
  device?: DeviceLike;
  requiresGrad?: boolean;
}

type Shape = number | number[];
const shapeOf = (shape: Shape) => (typeof shape === "number" ? [shape] : shape);

function finish(t: Tensor, options: CreateOptions): Tensor {
  if (options.requiresGrad) t.requiresGrad = true;
  return t;
}

function created(handle: unknown, options: CreateOptions): Tensor {
  return finish(new Tensor(handle as never), options);
}

const dtypeOr = (options: CreateOptions, fallback: DType = "float32") => (options.dtype ? toDType(options.dtype) : fallback);
const deviceOf = (options: CreateOptions) => options.device ?? "cpu";

export function empty(shape: Shape, options: CreateOptions = {}): Tensor {
  return created(native.empty(shapeOf(shape), dtypeOr(options), deviceOf(options)), options);
}
export function zeros(shape: Shape, options: CreateOptions = {}): Tensor {
  return created(native.zeros(shapeOf(shape), dtypeOr(options), deviceOf(options)), options);
}
export function ones(shape: Shape, options: CreateOptions = {}): Tensor {
  return created(native.ones(shapeOf(shape), dtypeOr(options), deviceOf(options)), options);
}
export function full(shape: Shape, value: Scalar, options: CreateOptions = {}): Tensor {
  const fallback: DType = typeof value === "boolean" ? "bool" : "float32";
  return created(native.full(shapeOf(shape), value, dtypeOr(options, fallback), deviceOf(options)), options);
}
export function zerosLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return zeros(t.shape, { dtype: options.dtype ?? t.dtype, device: options.device ?? t.device, requiresGrad: options.requiresGrad });
}
export function onesLike(t: Tensor, options: CreateOptions = {}): Tensor {
  return ones(t.shape, { dtype: options.dtype ?? t.dtype, device: options.device ?? t.device, requiresGrad: options.requiresGrad });
}
export function fullLike(t: Tensor, value: Scalar, options: CreateOptions = {}): Tensor {
  return full(t.shape, value, { dtype: options.dtype ?? t.dtype, device: options.device ?? t.device, requiresGrad: options.requiresGrad });
}
export function randLike(t: Tensor): Tensor {
  return rand(t.shape, { dtype: t.dtype, device: t.device });
}
export function randnLike(t: Tensor): Tensor {
  return randn(t.shape, { dtype: t.dtype, device: t.device });
}

/**
 * arange(end) or arange(start, end, step). Integer arguments give int64 (as torch.arange), any
 * fractional one gives float32, unless options.dtype says otherwise.
 */
export function arange(start: number, end?: number, step = 1, options: CreateOptions = {}): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const integral = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  return created(native.arange(start, end, step, dtypeOr(options, integral ? "int64" : "float32"), deviceOf(options)), options);
}
export function linspace(start: number, end: number, steps: number, options: CreateOptions = {}): Tensor {
  return created(native.linspace(start, end, steps, dtypeOr(options), deviceOf(options)), options);
}
/** Uniform on [0, 1). */
export function rand(shape: Shape, options: CreateOptions = {}): Tensor {
  return created(native.rand(shapeOf(shape), dtypeOr(options), deviceOf(options)), options);
}
/** Standard normal. */
export function randn(shape: Shape, options: CreateOptions = {}): Tensor {
  return created(native.randn(shapeOf(shape), dtypeOr(options), deviceOf(options)), options);
}
/** Integers uniform on [low, high). */
export function randint(low: number, high: number, shape: Shape, options: CreateOptions = {}): Tensor {
  return created(native.randint(low, high, shapeOf(shape), dtypeOr(options, "int64"), deviceOf(options)), options);
}
export function randperm(n: number, options: CreateOptions = {}): Tensor {
  return created(native.randperm(n, deviceOf(options)), options);
}
export function eye(n: number, options: CreateOptions = {}): Tensor {
  return created(native.eye(n, dtypeOr(options), deviceOf(options)), options);
}

type TypedArray = Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array | Uint16Array;

function dtypeOfTypedArray(data: TypedArray): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Uint8Array) return "uint8";
  throw new Error("Uint16Array data needs an explicit dtype ('float16' or 'bfloat16') in fromBuffer()");
}

/** A tensor over a copy of raw bytes (Buffer, ArrayBuffer or TypedArray) holding `dtype` elements. */
export function fromBuffer(data: ArrayBuffer | ArrayBufferView, shape: number[], dtype: DTypeLike, options: CreateOptions = {}): Tensor {
  const cpu = new Tensor(native.fromBuffer(data, shape, toDType(dtype)));
  if (!options.device || options.device === "cpu") return finish(cpu, options);
  const moved = cpu.to(options.device);
  cpu.dispose();
  return finish(moved, options);
}

function inferShape(data: NestedArray<number | boolean>): number[] {
  const shape: number[] = [];
  let level: NestedArray<number | boolean> = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0];
  }
  return shape;
}

function flatten(data: NestedArray<number | boolean>, shape: number[], depth: number, out: (number | boolean)[]): void {
  if (depth === shape.length) {
    if (Array.isArray(data)) throw new Error("tensor(): ragged nested array (more nesting than the first element has)");
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new Error(`tensor(): ragged nested array: expected length ${shape[depth]} at depth ${depth}`);
  }
  for (const item of data) flatten(item, shape, depth + 1, out);
}

/**
 * A tensor from nested JS arrays or a TypedArray. Number arrays default to float32 (JS cannot tell 1 from 1.0),
 * booleans to bool, TypedArrays to their own element type.
 */
export function tensor(data: NestedArray<number | boolean> | TypedArray, options: CreateOptions & { shape?: number[] } = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const dtype = options.dtype ? toDType(options.dtype) : dtypeOfTypedArray(data as TypedArray);
    const natural = data instanceof Uint16Array ? dtype : dtypeOfTypedArray(data as TypedArray);
    const shape = options.shape ?? [(data as TypedArray).length];
    const t = fromBuffer(data, shape, natural);
    if (natural === dtype && (!options.device || options.device === "cpu")) return finish(t, options);
    const converted = t.to({ dtype, device: options.device });
    t.dispose();
    return finish(converted, options);
  }
  const shape = inferShape(data);
  const flat: (number | boolean)[] = [];
  flatten(data, shape, 0, flat);
  const isBool = flat.length > 0 && typeof flat[0] === "boolean";
  const dtype = options.dtype ? toDType(options.dtype) : isBool ? "bool" : "float32";
  let source: TypedArray;
  let sourceDtype: DType;
  if (isBool || dtype === "bool" || dtype === "uint8") {
    // Any nonzero number is true, as torch.tensor(..., dtype=torch.bool); uint8 wraps around like torch.
    const toBool = isBool || dtype === "bool";
    source = Uint8Array.from(flat, (v) => (toBool ? Number(v !== 0 && v !== false) : Number(v)));
    sourceDtype = isBool || dtype === "bool" ? "bool" : "uint8";
  } else if (dtype === "int64") {
    source = BigInt64Array.from(flat, (v) => BigInt(Math.trunc(Number(v))));
    sourceDtype = "int64";
  } else if (dtype === "int32" || dtype === "int16" || dtype === "int8") {
    source = Int32Array.from(flat, Number);
    sourceDtype = "int32";
  } else {
    source = Float64Array.from(flat, Number);
    sourceDtype = "float64";
  }
  const t = fromBuffer(source, shape, sourceDtype);
  if (sourceDtype === dtype && (!options.device || options.device === "cpu")) return finish(t, options);
  const converted = t.to({ dtype, device: options.device });
  t.dispose();
  return finish(converted, options);
}

/** A 0-d tensor holding one number. */
export function scalarTensor(value: number, options: CreateOptions = {}): Tensor {
  return full([], value, options);
}
