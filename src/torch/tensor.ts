// The Tensor class: a JS handle on a libtorch tensor, with explicit memory management.
// Every op returns a new Tensor registered with the innermost tidy() scope, so loops free what they make.
import { native, type Handle } from "./native.js";

export type DType = "float32" | "float16" | "bfloat16" | "float64" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";
export type DTypeLike = DType | "f32" | "f16" | "bf16" | "f64" | "i64" | "i32" | "u8" | "half" | "float" | "double" | "long" | "int";
export type DeviceLike = "cpu" | "cuda" | `cuda:${number}` | string;
export type Scalar = number | boolean;
export type NestedArray<T> = T | NestedArray<T>[];

const DTYPE_ALIASES: Record<string, DType> = {
  f32: "float32", float: "float32", f16: "float16", half: "float16", bf16: "bfloat16", f64: "float64", double: "float64",
  i64: "int64", long: "int64", i32: "int32", int: "int32", i16: "int16", i8: "int8", u8: "uint8",
  torch_float32: "float32",
};
const DTYPES = new Set<DType>(["float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool"]);

/** Normalises a dtype name or alias ("bf16", "float32", "torch.bfloat16") to its canonical name. */
export function toDType(name: DTypeLike | string): DType {
  const bare = name.startsWith("torch.") ? name.slice(6) : name;
  if (DTYPES.has(bare as DType)) return bare as DType;
  // Own keys only: "constructor" or "toString" are not dtypes.
  const alias = Object.hasOwn(DTYPE_ALIASES, bare) ? DTYPE_ALIASES[bare] : undefined;
  if (!alias) throw new Error(`unknown dtype '${name}' (use one of ${[...DTYPES].join(", ")})`);
  return alias;
}

function isDTypeName(name: string): boolean {
  const bare = name.startsWith("torch.") ? name.slice(6) : name;
  return DTYPES.has(bare as DType) || Object.hasOwn(DTYPE_ALIASES, bare);
}

export function isFloatingDType(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float16" || dtype === "bfloat16" || dtype === "float64";
}

// ---- scopes ----
const scopes: Tensor[][] = [];

/**
 * Runs fn and disposes every tensor created inside it except those it returns (found in the returned
 * value: a Tensor, or arrays / plain objects / Maps holding tensors) and those marked with keep().
 * Returned tensors move to the enclosing scope. fn must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Tensor[] = [];
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    scopes.pop();
    for (const t of scope) {
      if (t.kept) t._watch();
      else t.dispose();
    }
    throw error;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new Error("tidy() needs a synchronous function: tensors made after an await cannot be tracked");
  }
  const returned = new Set<Tensor>();
  collectTensors(result, returned);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (returned.has(t)) {
      if (parent) parent.push(t);
      else t._watch();
    } else if (t.kept) {
      t._watch();
    } else {
      t.dispose();
    }
  }
  return result;
}

function collectTensors(value: unknown, into: Set<Tensor>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== "object") return;
  if (value instanceof Tensor) {
    into.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collectTensors(v, into, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collectTensors(v, into, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, into, depth + 1);
  }
}

/** Marks tensors to survive every enclosing tidy() (model weights, optimizer state, caches). */
export function keep<T extends Tensor | Tensor[]>(value: T): T {
  if (value instanceof Tensor) value.kept = true;
  else for (const t of value as Tensor[]) t.kept = true;
  return value;
}

/** Disposes every tensor found in value (a Tensor, or arrays / plain objects / Maps of them). */
export function dispose(value: unknown): void {
  const found = new Set<Tensor>();
  collectTensors(value, found);
  for (const t of found) t.dispose();
}

/** Number of native tensors alive now (not yet disposed or garbage collected). */
export function liveTensorCount(): number {
  return native.liveTensors() as number;
}

/** The slot number of a disposed tensor: any op given it throws "<op>: tensor argument N was disposed ...". */
const RELEASED = -1 as unknown as Handle;

// The backstop for tensors that escape every tidy() scope and are never disposed: when the JS object is
// collected, its native slot is released. Tensors inside a scope are not registered (the scope frees them),
// which keeps the per-op cost of a loop under tidy() to one native call and one small object.
const backstop = new FinalizationRegistry<Handle>((handle) => native.dispose(handle));

type TensorOrScalar = Tensor | Scalar;
const h = (x: TensorOrScalar) => (x instanceof Tensor ? x.handle : x);
// Tensor handles are numbers too: ops that take either say which they were given.
const isScalar = (x: TensorOrScalar) => !(x instanceof Tensor);
const wrapList = (handles: Handle[]) => handles.map((x) => new Tensor(x));

function flatDims(dims: (number | number[])[]): number[] {
  return dims.length === 1 && Array.isArray(dims[0]) ? dims[0] : (dims as number[]);
}

export interface ToOptions {
  dtype?: DTypeLike;
  device?: DeviceLike;
  nonBlocking?: boolean;
  copy?: boolean;
}

export class Tensor {
  /** @internal */ _handle: Handle | null;
  /** Survives tidy() scopes; set by keep(). */
  kept = false;
  /** @internal Registered with the finalization backstop. */
  _watched = false;
  #shape: number[] | undefined;

  /** @internal Wraps a native handle; use the creation functions instead. */
  constructor(handle: Handle) {
    this._handle = handle;
    const scope = scopes[scopes.length - 1];
    if (scope) scope.push(this);
    else this._watch();
  }

  /** @internal */
  get handle(): Handle {
    // A disposed tensor hands the op a released slot, so the op's own error names it.
    return this._handle ?? RELEASED;
  }

  /** @internal Lets the GC free the native tensor if this object is dropped without dispose(). */
  _watch(): void {
    if (!this._watched && this._handle !== null) {
      backstop.register(this, this._handle, this);
      this._watched = true;
    }
  }

  /** @internal Points this object at another native tensor (null: hand it over without freeing it). */
  _setHandle(handle: Handle | null): void {
    const watched = this._watched;
    if (watched) {
      backstop.unregister(this);
      this._watched = false;
    }
    this._handle = handle;
    this.#shape = undefined;
    if (watched) this._watch();
  }

  // ---- memory ----
  dispose(): void {
    if (this._handle !== null) {
      if (this._watched) {
        backstop.unregister(this);
        this._watched = false;
      }
      native.dispose(this._handle);
      this._handle = null;
    }
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
  get isDisposed(): boolean {
    return this._handle === null;
  }
  /** Marks this tensor to survive enclosing tidy() scopes. */
  keep(): this {
    this.kept = true;
    return this;
  }

  // ---- properties ----
  get shape(): number[] {
    return (this.#shape ??= native.shape(this.handle));
  }
  get ndim(): number {
    return this.shape.length;
  }
  dim(): number {
    return this.shape.length;
  }
  size(dim?: number): number {
    if (dim === undefined) return this.numel();
    const shape = this.shape;
    const d = dim < 0 ? dim + shape.length : dim;
    if (d < 0 || d >= shape.length) throw new Error(`size(): dim ${dim} out of range for a ${shape.length}-d tensor`);
    return shape[d];
  }
  numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get strides(): number[] {
    return native.strides(this.handle);
  }
  get dtype(): DType {
    return native.dtype(this.handle);
  }
  get device(): string {
    return native.device(this.handle);
  }
  get isCuda(): boolean {
    return this.device.startsWith("cuda");
  }
  isContiguous(): boolean {
    return native.isContiguous(this.handle);
  }
  /** Address of the first element (tests of aliasing). */
  dataPtr(): number {
    return native.dataPtr(this.handle);
  }
  toString(): string {
    return this._handle === null ? "Tensor(disposed)" : `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(value: boolean) {
    native.setRequiresGrad(this.handle, value);
  }
  requiresGrad_(value = true): this {
    native.setRequiresGrad(this.handle, value);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The accumulated gradient (a new handle on it each call), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(value: Tensor | null) {
    native.setGrad(this.handle, value === null ? null : value.handle);
  }
  zeroGrad(): void {
    native.setGrad(this.handle, null);
  }
  backward(gradient?: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward(this.handle, gradient?.handle ?? null, options.retainGraph ?? false, options.createGraph ?? false);
  }
  detach(): Tensor {
    return new Tensor(native.detach(this.handle));
  }

  // ---- conversion ----
  to(target: DTypeLike | DeviceLike | ToOptions): Tensor {
    let dtype: DType | null = null;
    let device: string | null = null;
    let options: ToOptions = {};
    if (typeof target === "string") {
      if (target === "cpu" || target.startsWith("cuda")) device = target;
      else if (isDTypeName(target)) dtype = toDType(target);
      else throw new Error(`to: '${target}' is neither a dtype (${[...DTYPES].join(", ")}) nor a device ('cpu', 'cuda', 'cuda:N')`);
    } else {
      options = target;
      dtype = target.dtype ? toDType(target.dtype) : null;
      device = target.device ?? null;
    }
    return new Tensor(native.to(this.handle, dtype, device, options.nonBlocking ?? false, options.copy ?? false));
  }
  cpu(): Tensor {
    return this.to("cpu");
  }
  cuda(index = 0): Tensor {
    return this.to(`cuda:${index}`);
  }
  float(): Tensor {
    return this.to("float32");
  }
  half(): Tensor {
    return this.to("float16");
  }
  bfloat16(): Tensor {
    return this.to("bfloat16");
  }
  double(): Tensor {
    return this.to("float64");
  }
  long(): Tensor {
    return this.to("int64");
  }
  int(): Tensor {
    return this.to("int32");
  }
  bool(): Tensor {
    return this.to("bool");
  }
  clone(): Tensor {
    return new Tensor(native.clone(this.handle));
  }
  contiguous(): Tensor {
    return new Tensor(native.contiguous(this.handle));
  }
  /** A second handle on the same tensor (shares storage and autograd identity). */
  alias(): Tensor {
    return new Tensor(native.alias(this.handle));
  }

  /** The elements as a flat typed array (float16/bfloat16 are widened to Float32Array). */
  data(): Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array | BigInt64Array {
    const dtype = this.dtype;
    if (dtype === "float16" || dtype === "bfloat16") {
      const wide = new Tensor(native.to(this.handle, "float32", null, false, false));
      try {
        return wide.data();
      } finally {
        wide.dispose();
      }
    }
    const buffer: ArrayBuffer = native.toBuffer(this.handle);
    switch (dtype) {
      case "float32": return new Float32Array(buffer);
      case "float64": return new Float64Array(buffer);
      case "int64": return new BigInt64Array(buffer);
      case "int32": return new Int32Array(buffer);
      case "int16": return new Int16Array(buffer);
      case "int8": return new Int8Array(buffer);
      default: return new Uint8Array(buffer);
    }
  }
  /** The elements as flat JS numbers (int64 converted with Number()). */
  dataAsNumbers(): number[] {
    const data = this.data();
    return data instanceof BigInt64Array ? Array.from(data, Number) : Array.from(data as ArrayLike<number>);
  }
  /** Nested JS arrays of numbers (booleans for bool tensors). */
  toArray(): NestedArray<number | boolean> {
    const flat: (number | boolean)[] = this.dtype === "bool" ? Array.from(this.data() as Uint8Array, (v) => v !== 0) : this.dataAsNumbers();
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    let offset = 0;
    const build = (d: number): NestedArray<number | boolean> => {
      const out: NestedArray<number | boolean>[] = [];
      for (let i = 0; i < shape[d]; i++) out.push(d === shape.length - 1 ? flat[offset++] : build(d + 1));
      return out;
    };
    return build(0);
  }
  item(): number {
    return native.item(this.handle);
  }

  // ---- shape ----
  view(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.view(this.handle, flatDims(shape)));
  }
  reshape(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.reshape(this.handle, flatDims(shape)));
  }
  permute(...dims: (number | number[])[]): Tensor {
    return new Tensor(native.permute(this.handle, flatDims(dims)));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.transpose(this.handle, dim0, dim1));
  }
  /** Transpose of a 2-d tensor. */
  get T(): Tensor {
    return this.transpose(0, 1);
  }
  split(sizeOrSizes: number | number[], dim = 0): Tensor[] {
    return wrapList(native.split(this.handle, sizeOrSizes, dim));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return wrapList(native.chunk(this.handle, chunks, dim));
  }
  unbind(dim = 0): Tensor[] {
    return wrapList(native.unbind(this.handle, dim));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.handle, dim, start, length));
  }
  /** t[..., start:end:step, ...] along dim (a view). */
  slice(dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return new Tensor(native.slice(this.handle, dim, start, end, step));
  }
  /** t[..., index, ...] along dim, removing that dim (a view). */
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.handle, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.handle, dim, index.handle));
  }
  /** Advanced indexing t[i0, i1, ...] with index tensors (null keeps a dim whole). */
  index(indices: (Tensor | null)[]): Tensor {
    return new Tensor(native.index(this.handle, indices.map((t) => (t === null ? null : t.handle))));
  }
  /** Out-of-place t[indices] = values (or += with accumulate). */
  indexPut(indices: (Tensor | null)[], values: Tensor, accumulate = false): Tensor {
    return new Tensor(native.indexPut(this.handle, indices.map((t) => (t === null ? null : t.handle)), values.handle, accumulate));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.handle, dim, index.handle));
  }
  scatter(dim: number, index: Tensor, src: TensorOrScalar): Tensor {
    return new Tensor(native.scatter(this.handle, dim, index.handle, h(src), isScalar(src)));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(native.scatterAdd(this.handle, dim, index.handle, src.handle));
  }
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return new Tensor(native.maskedFill(this.handle, mask.handle, h(value), isScalar(value)));
  }
  maskedSelect(mask: Tensor): Tensor {
    return new Tensor(native.maskedSelect(this.handle, mask.handle));
  }
  nonzero(): Tensor {
    return new Tensor(native.nonzero(this.handle));
  }
  expand(...shape: (number | number[])[]): Tensor {
    return new Tensor(native.expand(this.handle, flatDims(shape)));
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(other.shape);
  }
  repeat(...repeats: (number | number[])[]): Tensor {
    return new Tensor(native.repeat(this.handle, flatDims(repeats)));
  }
  repeatInterleave(repeats: number, dim: number): Tensor {
    return new Tensor(native.repeatInterleave(this.handle, repeats, dim));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.handle, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, dim));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.flatten(this.handle, startDim, endDim));
  }
  flip(...dims: (number | number[])[]): Tensor {
    return new Tensor(native.flip(this.handle, flatDims(dims)));
  }
  roll(shifts: number | number[], dims: number | number[]): Tensor {
    return new Tensor(native.roll(this.handle, shifts, dims));
  }
  tril(diagonal = 0): Tensor {
    return new Tensor(native.tril(this.handle, diagonal));
  }
  triu(diagonal = 0): Tensor {
    return new Tensor(native.triu(this.handle, diagonal));
  }

  // ---- in place (no autograd history on leaves that require grad: use under noGrad) ----
  copy_(src: Tensor, nonBlocking = false): this {
    native.copy_(this.handle, src.handle, nonBlocking);
    return this;
  }
  fill_(value: Scalar): this {
    native.fill_(this.handle, value);
    return this;
  }
  zero_(): this {
    native.zero_(this.handle);
    return this;
  }
  uniform_(low = 0, high = 1): this {
    native.uniform_(this.handle, low, high);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    native.normal_(this.handle, mean, std);
    return this;
  }
  indexCopy_(dim: number, index: Tensor, source: Tensor): this {
    native.indexCopy_(this.handle, dim, index.handle, source.handle);
    return this;
  }

  // ---- elementwise ----
  add(other: TensorOrScalar, alpha?: number): Tensor {
    return new Tensor(native.add(this.handle, h(other), alpha ?? null, isScalar(other)));
  }
  sub(other: TensorOrScalar, alpha?: number): Tensor {
    return new Tensor(native.sub(this.handle, h(other), alpha ?? null, isScalar(other)));
  }
  /** other - this */
  rsub(other: Scalar): Tensor {
    return new Tensor(native.rsub(this.handle, other));
  }
  mul(other: TensorOrScalar): Tensor {
    return new Tensor(native.mul(this.handle, h(other), isScalar(other)));
  }
  div(other: TensorOrScalar): Tensor {
    return new Tensor(native.div(this.handle, h(other), isScalar(other)));
  }
  pow(exponent: TensorOrScalar): Tensor {
    return new Tensor(native.pow(this.handle, h(exponent), isScalar(exponent)));
  }
  remainder(other: TensorOrScalar): Tensor {
    return new Tensor(native.remainder(this.handle, h(other), isScalar(other)));
  }
  floorDivide(other: TensorOrScalar): Tensor {
    return new Tensor(native.floorDivide(this.handle, h(other), isScalar(other)));
  }
  minimum(other: Tensor): Tensor {
    return new Tensor(native.minimum(this.handle, other.handle));
  }
  maximum(other: Tensor): Tensor {
    return new Tensor(native.maximum(this.handle, other.handle));
  }
  eq(other: TensorOrScalar): Tensor {
    return new Tensor(native.eq(this.handle, h(other), isScalar(other)));
  }
  ne(other: TensorOrScalar): Tensor {
    return new Tensor(native.ne(this.handle, h(other), isScalar(other)));
  }
  lt(other: TensorOrScalar): Tensor {
    return new Tensor(native.lt(this.handle, h(other), isScalar(other)));
  }
  le(other: TensorOrScalar): Tensor {
    return new Tensor(native.le(this.handle, h(other), isScalar(other)));
  }
  gt(other: TensorOrScalar): Tensor {
    return new Tensor(native.gt(this.handle, h(other), isScalar(other)));
  }
  ge(other: TensorOrScalar): Tensor {
    return new Tensor(native.ge(this.handle, h(other), isScalar(other)));
  }
  logicalAnd(other: Tensor): Tensor {
    return new Tensor(native.logicalAnd(this.handle, other.handle));
  }
  logicalOr(other: Tensor): Tensor {
    return new Tensor(native.logicalOr(this.handle, other.handle));
  }
  logicalXor(other: Tensor): Tensor {
    return new Tensor(native.logicalXor(this.handle, other.handle));
  }
  logicalNot(): Tensor {
    return new Tensor(native.logicalNot(this.handle));
  }
  neg(): Tensor {
    return new Tensor(native.neg(this.handle));
  }
  exp(): Tensor {
    return new Tensor(native.exp(this.handle));
  }
  log(): Tensor {
    return new Tensor(native.log(this.handle));
  }
  log1p(): Tensor {
    return new Tensor(native.log1p(this.handle));
  }
  expm1(): Tensor {
    return new Tensor(native.expm1(this.handle));
  }
  log2(): Tensor {
    return new Tensor(native.log2(this.handle));
  }
  sqrt(): Tensor {
    return new Tensor(native.sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return new Tensor(native.rsqrt(this.handle));
  }
  abs(): Tensor {
    return new Tensor(native.abs(this.handle));
  }
  sin(): Tensor {
    return new Tensor(native.sin(this.handle));
  }
  cos(): Tensor {
    return new Tensor(native.cos(this.handle));
  }
  tan(): Tensor {
    return new Tensor(native.tan(this.handle));
  }
  tanh(): Tensor {
    return new Tensor(native.tanh(this.handle));
  }
  sigmoid(): Tensor {
    return new Tensor(native.sigmoid(this.handle));
  }
  relu(): Tensor {
    return new Tensor(native.relu(this.handle));
  }
  silu(): Tensor {
    return new Tensor(native.silu(this.handle));
  }
  erf(): Tensor {
    return new Tensor(native.erf(this.handle));
  }
  floor(): Tensor {
    return new Tensor(native.floor(this.handle));
  }
  ceil(): Tensor {
    return new Tensor(native.ceil(this.handle));
  }
  round(): Tensor {
    return new Tensor(native.round(this.handle));
  }
  trunc(): Tensor {
    return new Tensor(native.trunc(this.handle));
  }
  sign(): Tensor {
    return new Tensor(native.sign(this.handle));
  }
  reciprocal(): Tensor {
    return new Tensor(native.reciprocal(this.handle));
  }
  square(): Tensor {
    return new Tensor(native.square(this.handle));
  }
  isnan(): Tensor {
    return new Tensor(native.isnan(this.handle));
  }
  isinf(): Tensor {
    return new Tensor(native.isinf(this.handle));
  }
  isfinite(): Tensor {
    return new Tensor(native.isfinite(this.handle));
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return new Tensor(native.clamp(this.handle, min ?? null, max ?? null));
  }
  clampMin(min: number): Tensor {
    return this.clamp(min, null);
  }
  clampMax(max: number): Tensor {
    return this.clamp(null, max);
  }
  nanToNum(nan = 0, posinf?: number, neginf?: number): Tensor {
    return new Tensor(native.nanToNum(this.handle, nan, posinf ?? null, neginf ?? null));
  }
  lerp(end: Tensor, weight: number): Tensor {
    return new Tensor(native.lerp(this.handle, end.handle, weight));
  }

  // ---- reductions ----
  sum(dim?: number | number[] | null, keepdim = false, dtype?: DTypeLike): Tensor {
    return new Tensor(native.sum(this.handle, dim ?? null, keepdim, dtype ? toDType(dtype) : null));
  }
  mean(dim?: number | number[] | null, keepdim = false, dtype?: DTypeLike): Tensor {
    return new Tensor(native.mean(this.handle, dim ?? null, keepdim, dtype ? toDType(dtype) : null));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.prod(this.handle, dim ?? null, keepdim));
  }
  /** Variance; unbiased (Bessel's correction) by default, as torch.var. */
  var(dim?: number | number[] | null, unbiased = true, keepdim = false): Tensor {
    return new Tensor(native.var(this.handle, dim ?? null, unbiased, keepdim));
  }
  std(dim?: number | number[] | null, unbiased = true, keepdim = false): Tensor {
    return new Tensor(native.std(this.handle, dim ?? null, unbiased, keepdim));
  }
  amax(dim?: number | number[] | null, keepdim = false): Tensor {
    return new Tensor(native.amax(this.handle, dim ?? null, keepdim));
  }
  amin(dim?: number | number[] | null, keepdim = false): Tensor {
    return new Tensor(native.amin(this.handle, dim ?? null, keepdim));
  }
  /** The maximum of all elements. */
  max(): Tensor;
  /** Maximum along dim, with the indices where it is reached. */
  max(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  max(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return new Tensor(native.max(this.handle, null));
    const [values, indices] = wrapList(native.max(this.handle, dim, keepdim));
    return { values, indices };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): { values: Tensor; indices: Tensor };
  min(dim?: number, keepdim = false): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return new Tensor(native.min(this.handle, null));
    const [values, indices] = wrapList(native.min(this.handle, dim, keepdim));
    return { values, indices };
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.handle, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmin(this.handle, dim ?? null, keepdim));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
    const [values, indices] = wrapList(native.topk(this.handle, k, dim, largest, sorted));
    return { values, indices };
  }
  sort(dim = -1, descending = false, stable = false): { values: Tensor; indices: Tensor } {
    const [values, indices] = wrapList(native.sort(this.handle, dim, descending, stable));
    return { values, indices };
  }
  argsort(dim = -1, descending = false): Tensor {
    const { values, indices } = this.sort(dim, descending, true);
    values.dispose();
    return indices;
  }
  cumsum(dim: number, dtype?: DTypeLike): Tensor {
    return new Tensor(native.cumsum(this.handle, dim, dtype ? toDType(dtype) : null));
  }
  cumprod(dim: number, dtype?: DTypeLike): Tensor {
    return new Tensor(native.cumprod(this.handle, dim, dtype ? toDType(dtype) : null));
  }
  softmax(dim: number, dtype?: DTypeLike): Tensor {
    return new Tensor(native.softmax(this.handle, dim, dtype ? toDType(dtype) : null));
  }
  logSoftmax(dim: number, dtype?: DTypeLike): Tensor {
    return new Tensor(native.logSoftmax(this.handle, dim, dtype ? toDType(dtype) : null));
  }
  logsumexp(dim?: number | number[] | null, keepdim = false): Tensor {
    return new Tensor(native.logsumexp(this.handle, dim ?? null, keepdim));
  }
  norm(p = 2, dim?: number | number[] | null, keepdim = false): Tensor {
    return new Tensor(native.norm(this.handle, p, dim ?? null, keepdim));
  }
  all(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.all(this.handle, dim ?? null, keepdim));
  }
  any(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.any(this.handle, dim ?? null, keepdim));
  }
  countNonzero(dim?: number): Tensor {
    return new Tensor(native.countNonzero(this.handle, dim ?? null));
  }
  /** Same shape and exactly equal elements. */
  equal(other: Tensor): boolean {
    return native.equal(this.handle, other.handle);
  }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return native.allclose(this.handle, other.handle, rtol, atol);
  }

  // ---- products ----
  matmul(other: Tensor): Tensor {
    return new Tensor(native.matmul(this.handle, other.handle));
  }
  mm(other: Tensor): Tensor {
    return new Tensor(native.mm(this.handle, other.handle));
  }
  bmm(other: Tensor): Tensor {
    return new Tensor(native.bmm(this.handle, other.handle));
  }
}
