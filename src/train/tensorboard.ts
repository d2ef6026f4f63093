// TensorBoard event files written by hand: TFRecord framing (length, masked CRC32C of the length, data,
// masked CRC32C of the data) around Event protos (tensorflow/core/util/event.proto) in protobuf wire format.
// Scalars use Summary.Value.simple_value, which TensorBoard's scalar dashboard reads directly.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";

// ---- CRC32C (Castagnoli), reflected polynomial 0x82F63B78 ----

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC32C of bytes (crc32c("123456789") = 0xE3069283). */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC32C_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 and add 0xa282ead8, so CRCs of data holding CRCs stay strong. */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: uint64 length, uint32 masked CRC of those 8 bytes, the data, uint32 masked CRC of the data (little-endian). */
export function frameRecord(data: Uint8Array): Buffer {
  const record = Buffer.alloc(8 + 4 + data.length + 4);
  record.writeBigUInt64LE(BigInt(data.length), 0);
  record.writeUInt32LE(maskedCrc32c(record.subarray(0, 8)), 8);
  record.set(data, 12);
  record.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return record;
}

// ---- protobuf wire format, only what Event needs ----

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private key(field: number, wireType: number): void {
    this.varint(BigInt((field << 3) | wireType));
  }
  private varint(value: bigint): void {
    const bytes: number[] = [];
    // Negative int64 values are encoded as their two's complement in 10 bytes, as protobuf does.
    let v = value < 0n ? value + (1n << 64n) : value;
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v > 0n);
    this.parts.push(Buffer.from(bytes));
  }
  double(field: number, value: number): this {
    this.key(field, WIRE_FIXED64);
    const b = Buffer.alloc(8);
    b.writeDoubleLE(value);
    this.parts.push(b);
    return this;
  }
  float(field: number, value: number): this {
    this.key(field, WIRE_FIXED32);
    const b = Buffer.alloc(4);
    b.writeFloatLE(value);
    this.parts.push(b);
    return this;
  }
  int64(field: number, value: number): this {
    this.key(field, WIRE_VARINT);
    this.varint(BigInt(Math.trunc(value)));
    return this;
  }
  bytes(field: number, value: Uint8Array): this {
    this.key(field, WIRE_BYTES);
    this.varint(BigInt(value.length));
    this.parts.push(Buffer.from(value));
    return this;
  }
  string(field: number, value: string): this {
    return this.bytes(field, Buffer.from(value, "utf8"));
  }
  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

// Field numbers of event.proto / summary.proto.
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5, sessionLog: 6 };
const SUMMARY = { value: 1 };
const SUMMARY_VALUE = { tag: 1, simpleValue: 2 };
const SESSION_LOG = { status: 1, msg: 3 };
const SESSION_START = 1;

/** An Event with a file_version (the first record of every events file). */
export function encodeFileVersionEvent(wallTime: number): Buffer {
  return new ProtoWriter().double(EVENT.wallTime, wallTime).int64(EVENT.step, 0).string(EVENT.fileVersion, "brain.Event:2").finish();
}

/** An Event holding a Summary with one simple_value per scalar. */
export function encodeScalarsEvent(wallTime: number, step: number, scalars: Record<string, number>): Buffer {
  const summary = new ProtoWriter();
  for (const [tag, value] of Object.entries(scalars)) {
    summary.bytes(SUMMARY.value, new ProtoWriter().string(SUMMARY_VALUE.tag, tag).float(SUMMARY_VALUE.simpleValue, value).finish());
  }
  return new ProtoWriter().double(EVENT.wallTime, wallTime).int64(EVENT.step, step).bytes(EVENT.summary, summary.finish()).finish();
}

/**
 * A SessionLog START at step: TensorBoard then drops the events after that step that earlier files of the run
 * hold (a resumed run restarts from its checkpoint's step, and the interrupted tail would otherwise show twice).
 */
export function encodeSessionStartEvent(wallTime: number, step: number, message = ""): Buffer {
  const log = new ProtoWriter().int64(SESSION_LOG.status, SESSION_START);
  if (message) log.string(SESSION_LOG.msg, message);
  return new ProtoWriter().double(EVENT.wallTime, wallTime).int64(EVENT.step, step).bytes(EVENT.sessionLog, log.finish()).finish();
}

/** Writes one events.out.tfevents.<seconds>.<host> file in a folder; every record is written (and reaches the OS) at once. */
export class TensorBoardWriter {
  readonly path: string;
  #fd: number | null;

  constructor(folder: string, options: { now?: number } = {}) {
    mkdirSync(folder, { recursive: true });
    const now = options.now ?? Date.now() / 1000;
    // The pid keeps two writers started in the same second on one host apart.
    this.path = join(folder, `events.out.tfevents.${Math.floor(now)}.${hostname()}.${process.pid}`);
    this.#fd = openSync(this.path, "a");
    this.write(encodeFileVersionEvent(now));
  }

  private write(event: Uint8Array): void {
    if (this.#fd === null) throw new Error(`TensorBoardWriter: ${this.path} is closed`);
    writeSync(this.#fd, frameRecord(event));
  }

  /** Adds scalars (tags such as "train/loss") at a step; non-finite values are written as they are. */
  addScalars(step: number, scalars: Record<string, number>, wallTime = Date.now() / 1000): void {
    if (Object.keys(scalars).length === 0) return;
    this.write(encodeScalarsEvent(wallTime, step, scalars));
  }

  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    this.addScalars(step, { [tag]: value }, wallTime);
  }

  /** Marks a (re)start at step: TensorBoard discards later steps of earlier files. */
  addSessionStart(step: number, message = "", wallTime = Date.now() / 1000): void {
    this.write(encodeSessionStartEvent(wallTime, step, message));
  }

  flush(): void {
    if (this.#fd !== null) fsyncSync(this.#fd);
  }

  close(): void {
    if (this.#fd === null) return;
    try {
      fsyncSync(this.#fd);
    } catch {
      // fsync can fail on some filesystems; the data was already written
    }
    closeSync(this.#fd);
    this.#fd = null;
  }
}

// ---- reading back (tests, the dashboard) ----

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: Record<string, number>;
  sessionStatus?: number;
}

/** Splits a TFRecord file into its records, checking both CRCs of each; throws naming the record that is corrupt. */
export function readRecords(bytes: Buffer, where = "events file"): Buffer[] {
  const records: Buffer[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    if (offset + 12 > bytes.length) throw new Error(`${where}: truncated record header at byte ${offset}`);
    const length = Number(bytes.readBigUInt64LE(offset));
    if (bytes.readUInt32LE(offset + 8) !== maskedCrc32c(bytes.subarray(offset, offset + 8))) {
      throw new Error(`${where}: length CRC mismatch in record ${records.length} at byte ${offset}`);
    }
    const end = offset + 12 + length;
    if (end + 4 > bytes.length) throw new Error(`${where}: record ${records.length} at byte ${offset} is truncated`);
    const data = bytes.subarray(offset + 12, end);
    if (bytes.readUInt32LE(end) !== maskedCrc32c(data)) throw new Error(`${where}: data CRC mismatch in record ${records.length} at byte ${offset}`);
    records.push(data);
    offset = end + 4;
  }
  return records;
}

interface Field {
  field: number;
  wireType: number;
  value: bigint | Buffer;
}

function* protoFields(bytes: Buffer): Generator<Field> {
  let offset = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (offset >= bytes.length) throw new Error("protobuf: truncated varint");
      const byte = bytes[offset++];
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (offset < bytes.length) {
    const key = Number(varint());
    const field = key >>> 3;
    const wireType = key & 7;
    let value: bigint | Buffer;
    if (wireType === WIRE_VARINT) value = varint();
    else if (wireType === WIRE_FIXED64) value = bytes.subarray(offset, (offset += 8));
    else if (wireType === WIRE_FIXED32) value = bytes.subarray(offset, (offset += 4));
    else if (wireType === WIRE_BYTES) {
      const length = Number(varint());
      value = bytes.subarray(offset, (offset += length));
    } else throw new Error(`protobuf: unsupported wire type ${wireType} for field ${field}`);
    yield { field, wireType, value };
  }
}

/** Decodes an Event proto (wall time, step, file version, scalar summaries, session status). */
export function decodeEvent(bytes: Buffer): DecodedEvent {
  const event: DecodedEvent = { wallTime: 0, step: 0, scalars: {} };
  for (const { field, value } of protoFields(bytes)) {
    if (field === EVENT.wallTime) event.wallTime = (value as Buffer).readDoubleLE(0);
    else if (field === EVENT.step) event.step = Number(BigInt.asIntN(64, value as bigint));
    else if (field === EVENT.fileVersion) event.fileVersion = (value as Buffer).toString("utf8");
    else if (field === EVENT.summary) {
      for (const summaryField of protoFields(value as Buffer)) {
        if (summaryField.field !== SUMMARY.value) continue;
        let tag = "";
        let simple: number | undefined;
        for (const v of protoFields(summaryField.value as Buffer)) {
          if (v.field === SUMMARY_VALUE.tag) tag = (v.value as Buffer).toString("utf8");
          else if (v.field === SUMMARY_VALUE.simpleValue) simple = (v.value as Buffer).readFloatLE(0);
        }
        if (simple !== undefined) event.scalars[tag] = simple;
      }
    } else if (field === EVENT.sessionLog) {
      for (const f of protoFields(value as Buffer)) if (f.field === SESSION_LOG.status) event.sessionStatus = Number(f.value as bigint);
    }
  }
  return event;
}

/** Every event of an events file, CRCs checked. */
export function readEventFile(path: string): DecodedEvent[] {
  return readRecords(readFileSync(path), path).map(decodeEvent);
}
