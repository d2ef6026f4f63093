// Test helpers: safetensors files assembled by hand, byte by byte, independently of src/torch/safetensors.ts.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { native } from "../../src/torch/native.js";
import type { Tensor } from "../../src/torch/index.js";

const scratchFolders: string[] = [];
process.on("exit", () => {
  for (const folder of scratchFolders) rmSync(folder, { recursive: true, force: true });
});

/** A fresh empty folder, removed when the test process exits. */
export function scratchFolder(): string {
  const folder = mkdtempSync(join(tmpdir(), "vlmkit-safetensors-"));
  scratchFolders.push(folder);
  return folder;
}

/** u64 LE header length, the header text followed by `padding` spaces, then the data buffers concatenated. */
export function assemble(headerText: string, buffers: Uint8Array[], padding = 0): Buffer {
  const header = Buffer.concat([Buffer.from(headerText, "utf8"), Buffer.alloc(padding, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([length, header, ...buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]);
}

/** Spaces that make the header text a multiple of 8 bytes long. */
export function alignPadding(headerText: string): number {
  return (8 - (Buffer.byteLength(headerText, "utf8") % 8)) % 8;
}

/** A tensor's raw bytes (contiguous, little-endian as stored). */
export function rawBytes(t: Tensor): Buffer {
  return Buffer.from(native.toBuffer(t.handle) as ArrayBuffer);
}

export function bytesOf(array: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array | Int8Array | Int16Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

/** bfloat16 bits of a float32 value, rounding to nearest even (the conversion libtorch does). */
export function bfloat16Bits(value: number): number {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0];
  const lsb = (bits >>> 16) & 1;
  return ((bits + 0x7fff + lsb) >>> 16) & 0xffff;
}
