// Reading and writing safetensors files, the format of Hugging Face checkpoints.
// Layout: u64 little-endian header length N, N bytes of JSON (name -> dtype, shape, data_offsets), then the data
// buffer, which the tensors tile exactly. Tensors load one at a time straight from disk into their storage
// (native.readFileInto), and are written one at a time from their storage (native.writeToFd), so neither reading
// nor writing a checkpoint ever holds a second copy of it in memory.
import {
  closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync,
  statSync, unlinkSync, writeSync,
} from "node:fs";
import { endianness } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { native } from "./native.js";
import { empty } from "./creation.js";
import { Tensor, toDType, type DType, type DTypeLike, type DeviceLike } from "./tensor.js";
import { syncFolder, temporaryPath, writeFileAtomically } from "./files.js";

/** safetensors dtype names and the element size of each, for the dtypes vlmkit tensors can hold. */
const FROM_SAFETENSORS: Record<string, { dtype: DType; elementSize: number }> = {
  F64: { dtype: "float64", elementSize: 8 },
  F32: { dtype: "float32", elementSize: 4 },
  F16: { dtype: "float16", elementSize: 2 },
  BF16: { dtype: "bfloat16", elementSize: 2 },
  I64: { dtype: "int64", elementSize: 8 },
  I32: { dtype: "int32", elementSize: 4 },
  I16: { dtype: "int16", elementSize: 2 },
  I8: { dtype: "int8", elementSize: 1 },
  U8: { dtype: "uint8", elementSize: 1 },
  BOOL: { dtype: "bool", elementSize: 1 },
};
const TO_SAFETENSORS: Record<DType, string> = {
  float64: "F64", float32: "F32", float16: "F16", bfloat16: "BF16", int64: "I64", int32: "I32", int16: "I16", int8: "I8",
  uint8: "U8", bool: "BOOL",
};
// Valid safetensors dtypes that libtorch 1.13 (and so vlmkit) cannot hold: named in errors as unsupported, not unknown.
const UNSUPPORTED_SAFETENSORS = new Set(["F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "U16", "U32", "U64", "C64"]);

// The safetensors reference implementation refuses headers above 100 MB; a larger length means a corrupt file.
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = "__metadata__";

/** What a safetensors header says about one tensor. */
export interface SafetensorsTensorInfo {
  dtype: DType;
  /** The dtype as the file spells it ("BF16"). */
  fileDType: string;
  shape: number[];
  byteLength: number;
  /** [begin, end) relative to the start of the data buffer. */
  dataOffsets: [number, number];
}

export interface SafetensorsLoadOptions {
  /** Convert to this dtype after reading (default: the file's dtype). */
  dtype?: DTypeLike;
  /** Move to this device after reading (default: "cpu"). */
  device?: DeviceLike;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkLittleEndianHost(): void {
  if (endianness() !== "LE") throw new Error("safetensors: data is little-endian and is copied raw; this big-endian host is not supported");
}

function fileIdentity(path: string): string {
  const stats = statSync(path);
  return `${stats.dev}:${stats.ino}`;
}

/**
 * One safetensors file. Opening it reads and validates only the header; get() then reads one tensor's bytes.
 * Holds no file descriptor, so there is nothing to close.
 */
export class SafetensorsFile {
  readonly path: string;
  /** The file's __metadata__ (string to string), {} when it has none. */
  readonly metadata: Record<string, string>;
  /** Byte offset of the data buffer in the file (8 + header length). */
  readonly dataStart: number;
  readonly #tensors: Map<string, SafetensorsTensorInfo>;
  // dev:inode at open time: a file replaced since (an atomic rewrite) would make the header's offsets wrong.
  readonly #identity: string;

  constructor(path: string) {
    checkLittleEndianHost();
    this.path = path;
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (error) {
      throw new Error(`cannot open safetensors file ${path}: ${(error as Error).message}`);
    }
    try {
      const stats = fstatSync(fd);
      this.#identity = `${stats.dev}:${stats.ino}`;
      const fileSize = stats.size;
      if (fileSize < 8) throw new Error(`${path} is not a safetensors file: it has ${fileSize} bytes, fewer than the 8-byte header length`);
      const lengthBytes = Buffer.alloc(8);
      readFully(fd, lengthBytes, 0, path);
      const headerLength = lengthBytes.readBigUInt64LE(0);
      if (headerLength > BigInt(fileSize - 8)) {
        throw new Error(`${path}: header length ${headerLength} runs past the end of the file (${fileSize} bytes): the file is truncated or not safetensors`);
      }
      if (headerLength > BigInt(MAX_HEADER_BYTES)) {
        throw new Error(`${path}: header length ${headerLength} exceeds the safetensors limit of ${MAX_HEADER_BYTES} bytes: the file is corrupt`);
      }
      const header = Buffer.alloc(Number(headerLength));
      readFully(fd, header, 8, path);
      this.dataStart = 8 + header.length;
      const parsed = parseHeader(header, path);
      this.metadata = parsed.metadata;
      this.#tensors = parsed.tensors;
      checkTiling(this.#tensors, fileSize - this.dataStart, path);
    } finally {
      closeSync(fd);
    }
  }

  /** Tensor names, in the order their data lies in the file (so reading them in this order is sequential). */
  keys(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** dtype, shape and byte length of one tensor, without reading it. */
  info(name: string): SafetensorsTensorInfo {
    const entry = this.#tensors.get(name);
    if (!entry) {
      const names = this.keys();
      const sample = names.slice(0, 5).map((n) => `'${n}'`).join(", ");
      throw new Error(`${this.path} has no tensor '${name}' (it holds ${names.length} tensors${names.length ? ", e.g. " + sample : ""})`);
    }
    return { ...entry, shape: [...entry.shape], dataOffsets: [...entry.dataOffsets] };
  }

  /**
   * Reads one tensor: its bytes go straight from disk into a new tensor on options.device (CUDA) or the CPU,
   * which is then converted to options.dtype / moved to options.device (the first copy is freed at once).
   */
  get(name: string, options: SafetensorsLoadOptions = {}): Tensor {
    const entry = this.info(name);
    if (fileIdentity(this.path) !== this.#identity) {
      throw new Error(`${this.path} was replaced since it was opened (reading '${name}'): open it again with new SafetensorsFile()`);
    }
    const dtype = options.dtype === undefined ? entry.dtype : toDType(options.dtype);
    const device = options.device ?? "cpu";
    // CUDA tensors are read straight into device memory (through pinned staging buffers), others on the host
    const readDevice = device.startsWith("cuda") ? device : "cpu";
    const raw = empty(entry.shape, { dtype: entry.dtype, device: readDevice });
    try {
      if (entry.byteLength > 0) native.readFileInto(raw.handle, this.path, this.dataStart + entry.dataOffsets[0]);
    } catch (error) {
      raw.dispose();
      throw new Error(`cannot read tensor '${name}' from ${this.path}: ${(error as Error).message}`);
    }
    if (dtype === entry.dtype && device === readDevice) return raw;
    try {
      return raw.to({ dtype, device });
    } finally {
      raw.dispose();
    }
  }
}

function readFully(fd: number, into: Buffer, position: number, path: string): void {
  let done = 0;
  while (done < into.length) {
    const n = readSync(fd, into, done, into.length - done, position + done);
    if (n === 0) throw new Error(`${path} ended while reading its header at byte ${position + done}`);
    done += n;
  }
}

/** The first key that the top-level object of a (valid) JSON text has twice, or null. */
function firstDuplicateTopLevelKey(text: string): string | null {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "{" || ch === "[") depth++;
    else if (ch === "}" || ch === "]") depth--;
    else if (ch === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (depth === 1) {
        let next = end + 1;
        while (/\s/.test(text[next] ?? "")) next++;
        if (text[next] === ":") {
          const key = JSON.parse(text.slice(i, end + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = end;
    }
  }
  return null;
}

function parseHeader(header: Buffer, path: string): { metadata: Record<string, string>; tensors: Map<string, SafetensorsTensorInfo> } {
  let text: string;
  try {
    // fatal: invalid UTF-8 is an error, not U+FFFD replacement characters inside tensor names
    text = new TextDecoder("utf-8", { fatal: true }).decode(header);
  } catch {
    throw new Error(`${path}: the safetensors header is not valid UTF-8; the file is damaged or not a safetensors file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: the safetensors header is not valid JSON (${(error as Error).message})`);
  }
  // JSON.parse keeps the last of two equal keys; a header naming a tensor twice is ambiguous, so refuse it.
  const duplicate = firstDuplicateTopLevelKey(text);
  if (duplicate !== null) throw new Error(`${path}: the safetensors header names '${duplicate}' twice; each tensor must appear once (re-save the file)`);
  if (!isPlainObject(json)) throw new Error(`${path}: the safetensors header must be a JSON object, got ${Array.isArray(json) ? "an array" : typeof json}`);

  let metadata: Record<string, string> = {};
  if (json[METADATA_KEY] !== undefined) {
    const raw = json[METADATA_KEY];
    if (!isPlainObject(raw)) throw new Error(`${path}: ${METADATA_KEY} must be an object of strings`);
    for (const [key, value] of Object.entries(raw)) {
      if (typeof value !== "string") throw new Error(`${path}: ${METADATA_KEY}['${key}'] must be a string, got ${JSON.stringify(value)}`);
    }
    metadata = Object.fromEntries(Object.entries(raw)) as Record<string, string>;
  }

  const entries: [string, SafetensorsTensorInfo][] = [];
  for (const [name, raw] of Object.entries(json)) {
    if (name === METADATA_KEY) continue;
    const where = `${path}: tensor '${name}'`;
    if (!isPlainObject(raw)) throw new Error(`${where}: header entry must be an object with dtype, shape and data_offsets`);
    const fileDType = raw.dtype;
    if (typeof fileDType !== "string") throw new Error(`${where}: dtype must be a string, got ${JSON.stringify(fileDType)}`);
    const known = FROM_SAFETENSORS[fileDType];
    if (!known) {
      const supported = Object.keys(FROM_SAFETENSORS).join(", ");
      if (UNSUPPORTED_SAFETENSORS.has(fileDType)) {
        throw new Error(`${where}: dtype ${fileDType} is not supported by vlmkit (supported: ${supported}); convert the checkpoint to bf16/f16/f32 first`);
      }
      throw new Error(`${where}: unknown dtype '${fileDType}' (safetensors dtypes vlmkit reads: ${supported})`);
    }
    const shape = raw.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    const offsets = raw.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
      throw new Error(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
    }
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const byteLength = offsets[1] - offsets[0];
    if (byteLength !== numel * known.elementSize) {
      throw new Error(
        `${where}: data_offsets [${offsets}] span ${byteLength} bytes, but shape [${shape}] of ${fileDType} needs ` +
          `${numel} x ${known.elementSize} = ${numel * known.elementSize} bytes`,
      );
    }
    entries.push([name, { dtype: known.dtype, fileDType, shape: shape as number[], byteLength, dataOffsets: [offsets[0], offsets[1]] }]);
  }
  // File order: by begin, then end (so an empty tensor sits before a non-empty one starting at the same byte).
  entries.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]);
  return { metadata, tensors: new Map(entries) };
}

// The tensors must tile the data buffer exactly: each starts where the previous ended, the last ends at the file's end.
function checkTiling(tensors: Map<string, SafetensorsTensorInfo>, dataSize: number, path: string): void {
  let cursor = 0;
  let previous: string | null = null;
  for (const [name, { dataOffsets: [begin, end] }] of tensors) {
    if (begin < cursor) {
      throw new Error(`${path}: tensor '${name}' (bytes ${begin}-${end}) overlaps tensor '${previous}' (which ends at ${cursor}): the header is corrupt`);
    }
    if (begin > cursor) {
      const after = previous === null ? "the start of the data" : `tensor '${previous}'`;
      throw new Error(`${path}: ${begin - cursor} bytes between ${after} (ending at ${cursor}) and tensor '${name}' (starting at ${begin}) belong to no tensor: the header is corrupt`);
    }
    if (end > dataSize) {
      throw new Error(`${path}: tensor '${name}' ends at byte ${end} of the data, but the file holds only ${dataSize} data bytes: the file is truncated`);
    }
    cursor = end;
    previous = name;
  }
  if (cursor !== dataSize) {
    const last = previous === null ? "the header (which lists no tensors)" : `the last tensor '${previous}'`;
    throw new Error(`${path}: ${dataSize - cursor} bytes after ${last} belong to no tensor: the file is corrupt or was appended to`);
  }
}

/** Reads every tensor of a safetensors file (one at a time, converted as options say). */
export function readSafetensors(path: string, options: SafetensorsLoadOptions = {}): Map<string, Tensor> {
  const file = new SafetensorsFile(path);
  const loaded = new Map<string, Tensor>();
  try {
    for (const name of file.keys()) loaded.set(name, file.get(name, options));
  } catch (error) {
    for (const t of loaded.values()) t.dispose();
    throw error;
  }
  return loaded;
}

// ---- sharded checkpoints ----

export const SAFETENSORS_INDEX_NAME = "model.safetensors.index.json";
export const SAFETENSORS_WEIGHTS_NAME = "model.safetensors";

/**
 * The weights of a Hugging Face model folder: model.safetensors.index.json (weight_map: name -> shard file) when
 * present, else model.safetensors, else the folder's only *.safetensors file. Also opens an index file or a single
 * .safetensors file given directly. Shard headers are read on first use.
 */
export class SafetensorsCheckpoint {
  /** What was opened: the index file or the single .safetensors file. */
  readonly path: string;
  /** Shard file names (relative to the folder), in order. */
  readonly files: string[];
  /** The index's "metadata" (e.g. total_size), or the single file's __metadata__. */
  readonly metadata: Record<string, unknown>;
  readonly #folder: string;
  readonly #weightMap: Map<string, string> | null;
  readonly #opened = new Map<string, SafetensorsFile>();

  constructor(pathOrFolder: string) {
    if (!existsSync(pathOrFolder)) throw new Error(`checkpoint path ${pathOrFolder} does not exist`);
    let path = pathOrFolder;
    if (statSync(pathOrFolder).isDirectory()) path = findWeightsIn(pathOrFolder);
    this.path = path;
    this.#folder = dirname(path);
    if (!path.endsWith(".json")) {
      this.#weightMap = null;
      this.files = [basename(path)];
      const file = this.#shard(this.files[0]);
      this.metadata = { ...file.metadata };
      return;
    }
    let index: unknown;
    try {
      index = JSON.parse(readFileSync(path, "utf8"));
    } catch (error) {
      throw new Error(`cannot read safetensors index ${path}: ${(error as Error).message}`);
    }
    if (!isPlainObject(index) || !isPlainObject(index.weight_map)) {
      throw new Error(`${path} is not a safetensors index: it needs a "weight_map" object (tensor name -> shard file)`);
    }
    this.metadata = isPlainObject(index.metadata) ? { ...index.metadata } : {};
    this.#weightMap = new Map();
    const shards = new Map<string, string>(); // shard -> first tensor mapped to it, for the error message
    for (const [name, shard] of Object.entries(index.weight_map)) {
      if (typeof shard !== "string") throw new Error(`${path}: weight_map['${name}'] must be a file name, got ${JSON.stringify(shard)}`);
      this.#weightMap.set(name, shard);
      if (!shards.has(shard)) shards.set(shard, name);
    }
    for (const [shard, firstName] of shards) {
      if (!existsSync(join(this.#folder, shard))) {
        throw new Error(`shard ${join(this.#folder, shard)} is missing: ${path} maps tensors to it (e.g. '${firstName}'); re-download or re-save the checkpoint`);
      }
    }
    this.files = [...shards.keys()];
  }

  /** Tensor names: the index's order, or the single file's data order. */
  keys(): string[] {
    return this.#weightMap ? [...this.#weightMap.keys()] : this.#shard(this.files[0]).keys();
  }

  has(name: string): boolean {
    return this.#weightMap ? this.#weightMap.has(name) : this.#shard(this.files[0]).has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    const { file } = this.#locate(name);
    return file.info(name);
  }

  /** Reads one tensor (see SafetensorsFile.get). */
  get(name: string, options: SafetensorsLoadOptions = {}): Tensor {
    const { file } = this.#locate(name);
    return file.get(name, options);
  }

  /** Yields tensors one at a time, so a caller that stores each into its module never holds two unplaced copies. */
  *tensors(names: string[] = this.keys(), options: SafetensorsLoadOptions = {}): Generator<[string, Tensor]> {
    for (const name of names) yield [name, this.get(name, options)];
  }

  /** Reads the named tensors (default: all), one at a time; on error frees those already read. */
  loadTensors(names: string[] = this.keys(), options: SafetensorsLoadOptions = {}): Map<string, Tensor> {
    const loaded = new Map<string, Tensor>();
    try {
      for (const [name, t] of this.tensors(names, options)) loaded.set(name, t);
    } catch (error) {
      for (const t of loaded.values()) t.dispose();
      throw error;
    }
    return loaded;
  }

  #locate(name: string): { file: SafetensorsFile } {
    if (!this.#weightMap) return { file: this.#shard(this.files[0]) };
    const shard = this.#weightMap.get(name);
    if (shard === undefined) {
      throw new Error(`checkpoint ${this.path} has no tensor '${name}' (its weight_map lists ${this.#weightMap.size} tensors)`);
    }
    const file = this.#shard(shard);
    if (!file.has(name)) throw new Error(`${this.path} maps '${name}' to shard ${file.path}, but that shard has no such tensor: the index and shards disagree`);
    return { file };
  }

  #shard(shard: string): SafetensorsFile {
    let file = this.#opened.get(shard);
    if (!file) {
      file = new SafetensorsFile(join(this.#folder, shard));
      this.#opened.set(shard, file);
    }
    return file;
  }
}

function findWeightsIn(folder: string): string {
  const index = join(folder, SAFETENSORS_INDEX_NAME);
  if (existsSync(index)) return index;
  const single = join(folder, SAFETENSORS_WEIGHTS_NAME);
  if (existsSync(single)) return single;
  const found = readdirSync(folder).filter((f) => f.endsWith(".safetensors")).sort();
  if (found.length === 1) return join(folder, found[0]);
  if (found.length === 0) {
    throw new Error(`no safetensors weights in ${folder}: looked for ${SAFETENSORS_INDEX_NAME}, ${SAFETENSORS_WEIGHTS_NAME} and any *.safetensors`);
  }
  throw new Error(`${folder} holds several .safetensors files (${found.join(", ")}) and no ${SAFETENSORS_INDEX_NAME}: open one of them by path`);
}

// ---- writing ----

type TensorCollection = Map<string, Tensor> | Record<string, Tensor>;

function sortedEntries(tensors: TensorCollection, sort = true): [string, Tensor][] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === METADATA_KEY) throw new Error(`'${METADATA_KEY}' is reserved by safetensors and cannot name a tensor`);
    if (!(t instanceof Tensor)) throw new Error(`'${name}' is not a Tensor`);
  }
  return sort ? entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)) : entries;
}

interface PlannedTensor {
  name: string;
  tensor: Tensor;
  byteLength: number;
}

function planTensor(name: string, tensor: Tensor): PlannedTensor & { header: { dtype: string; shape: number[] } } {
  let dtype: DType, shape: number[];
  try {
    dtype = tensor.dtype;
    shape = tensor.shape;
  } catch (error) {
    throw new Error(`cannot save tensor '${name}': ${(error as Error).message}`);
  }
  const numel = shape.reduce((a, b) => a * b, 1);
  const byteLength = numel * FROM_SAFETENSORS[TO_SAFETENSORS[dtype]].elementSize;
  return { name, tensor, byteLength, header: { dtype: TO_SAFETENSORS[dtype], shape } };
}

/**
 * The header bytes: compact JSON (__metadata__ first, then tensors in the given order, data laid out in that
 * order), padded with spaces so the data buffer starts 8-byte aligned, as the reference implementation does.
 */
function buildHeader(planned: ReturnType<typeof planTensor>[], metadata: Record<string, string> | undefined): Buffer {
  // Built as a list, not an object: object keys that look like integers (or "__proto__") would not keep their place.
  const fields: [string, unknown][] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== "string") throw new Error(`safetensors metadata values must be strings: '${key}' is ${JSON.stringify(value)}`);
    }
    fields.push([METADATA_KEY, metadata]);
  }
  let offset = 0;
  for (const p of planned) {
    fields.push([p.name, { dtype: p.header.dtype, shape: p.header.shape, data_offsets: [offset, offset + p.byteLength] }]);
    offset += p.byteLength;
  }
  const text = "{" + fields.map(([key, value]) => JSON.stringify(key) + ":" + JSON.stringify(value)).join(",") + "}";
  const json = Buffer.from(text, "utf8");
  const padding = (8 - (json.length % 8)) % 8;
  return Buffer.concat([json, Buffer.alloc(padding, " ")]);
}

/** Writes a safetensors file to a temporary sibling (fsynced); returns its path. The caller renames it into place. */
function writeToTemporary(path: string, tensors: TensorCollection, metadata: Record<string, string> | undefined): string {
  let planned: ReturnType<typeof planTensor>[], header: Buffer;
  try {
    planned = sortedEntries(tensors).map(([name, t]) => planTensor(name, t));
    header = buildHeader(planned, metadata);
  } catch (error) {
    throw new Error(`cannot write ${path}: ${(error as Error).message}`);
  }
  const lengthBytes = Buffer.alloc(8);
  lengthBytes.writeBigUInt64LE(BigInt(header.length));
  const expectedSize = 8 + header.length + planned.reduce((sum, p) => sum + p.byteLength, 0);

  const temporary = temporaryPath(path);
  let fd: number | null = null;
  let writing = "the header";
  try {
    fd = openSync(temporary, "w");
    writeSync(fd, lengthBytes);
    writeSync(fd, header);
    for (const p of planned) {
      writing = `tensor '${p.name}'`;
      native.writeToFd(fd, p.tensor.handle);
    }
    const written = fstatSync(fd).size;
    if (written !== expectedSize) throw new Error(`wrote ${written} bytes, expected ${expectedSize}`);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    return temporary;
  } catch (error) {
    if (fd !== null) closeSync(fd);
    removeQuietly(temporary);
    throw new Error(`cannot write ${path} (failed at ${writing}): ${(error as Error).message}; the file was not changed`);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}


/**
 * Writes tensors (from any device) as a safetensors file: keys sorted, data written tensor by tensor from
 * their storage. Atomic: the bytes go to `path.tmp-<pid>`, are fsynced, then renamed over path, so a crash
 * or an error leaves either the old file or the complete new one.
 */
export function writeSafetensors(path: string, tensors: TensorCollection, metadata?: Record<string, string>): void {
  checkLittleEndianHost();
  const temporary = writeToTemporary(path, tensors, metadata);
  try {
    renameSync(temporary, path);
  } catch (error) {
    removeQuietly(temporary);
    throw new Error(`cannot write ${path}: ${(error as Error).message}`);
  }
  syncFolder(dirname(resolve(path)));
}

export interface ShardedWriteOptions {
  /** Largest shard in bytes (default 5 GB, transformers' default). A tensor larger than this gets a shard of its own. */
  maxShardBytes?: number;
  /** __metadata__ of every shard; {"format": "pt"} is added unless given, since transformers refuses files without it. */
  metadata?: Record<string, string>;
}

export interface ShardedWriteResult {
  /** Files written, relative to the folder. */
  files: string[];
  /** The index file's name, or null when everything fit in one model.safetensors. */
  index: string | null;
}

const SHARD_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;

/**
 * Writes a model folder's weights as transformers' save_pretrained does: tensors (in the given order) fill shards
 * model-00001-of-0000N.safetensors up to maxShardBytes, plus model.safetensors.index.json; one shard is written as
 * model.safetensors without an index. Every shard is written to a temporary file first and renamed only once all
 * are complete; the index is written last. Shards and the index left by an earlier, different save are removed.
 */
export function writeShardedSafetensors(folder: string, tensors: TensorCollection, options: ShardedWriteOptions = {}): ShardedWriteResult {
  checkLittleEndianHost();
  const maxShardBytes = options.maxShardBytes ?? 5_000_000_000;
  if (!(maxShardBytes > 0)) throw new Error(`maxShardBytes must be positive, got ${maxShardBytes}`);
  const metadata = { format: "pt", ...options.metadata };
  mkdirSync(folder, { recursive: true });

  // huggingface_hub's split: tensors in the given (module) order fill a shard until the next would overflow it;
  // a tensor larger than the limit is put in a shard of its own at once.
  const shards: Map<string, Tensor>[] = [];
  let current = new Map<string, Tensor>();
  let currentBytes = 0;
  let totalSize = 0;
  for (const [name, tensor] of sortedEntries(tensors, false)) {
    const { byteLength } = planTensor(name, tensor);
    totalSize += byteLength;
    if (byteLength > maxShardBytes) {
      shards.push(new Map([[name, tensor]]));
      continue;
    }
    if (currentBytes + byteLength > maxShardBytes) {
      shards.push(current);
      current = new Map();
      currentBytes = 0;
    }
    current.set(name, tensor);
    currentBytes += byteLength;
  }
  if (current.size > 0 || shards.length === 0) shards.push(current);

  const count = shards.length;
  const pad = (n: number) => String(n).padStart(5, "0");
  const names = count === 1 ? [SAFETENSORS_WEIGHTS_NAME] : shards.map((_, i) => `model-${pad(i + 1)}-of-${pad(count)}.safetensors`);
  const temporaries: string[] = [];
  try {
    shards.forEach((shard, i) => temporaries.push(writeToTemporary(join(folder, names[i]), shard, metadata)));
  } catch (error) {
    for (const t of temporaries) removeQuietly(t);
    throw error;
  }
  temporaries.forEach((temporary, i) => renameSync(temporary, join(folder, names[i])));

  const indexPath = join(folder, SAFETENSORS_INDEX_NAME);
  let index: string | null = null;
  if (count > 1) {
    // Sorted by name, as transformers writes it (json.dumps(..., sort_keys=True)).
    const pairs = shards.flatMap((shard, i) => [...shard.keys()].map((name): [string, string] => [name, names[i]]));
    const weightMap = Object.fromEntries(pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    writeFileAtomically(indexPath, JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + "\n");
    index = SAFETENSORS_INDEX_NAME;
  } else {
    removeQuietly(indexPath);
  }
  const written = new Set(names);
  for (const file of readdirSync(folder)) {
    if ((SHARD_PATTERN.test(file) || (count > 1 && file === SAFETENSORS_WEIGHTS_NAME)) && !written.has(file)) removeQuietly(join(folder, file));
  }
  syncFolder(folder);
  return { files: names, index };
}

