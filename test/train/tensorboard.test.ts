// TensorBoard event files: CRC32C against its published check value, the TFRecord mask, Event protos against
// bytes assembled by hand from the protobuf wire format, and a written file read back with its CRCs checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TensorBoardWriter, crc32c, decodeEvent, frameRecord, maskedCrc32c, readEventFile, readRecords } from "../../src/train/tensorboard.js";
import { temporaryRunDir } from "./helpers.js";

const ascii = (s: string) => Buffer.from(s, "ascii");

test("crc32c: the check value of '123456789' and other published vectors", () => {
  assert.equal(crc32c(ascii("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, of 0xFF, and 0..31 ascending.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
});

test("maskedCrc32c: rotate right 15 then add 0xa282ead8 (mod 2^32)", () => {
  // 0xE3069283 >>> 15 = 0x1C60D; its low 15 bits 0x1283 << 17 = 0x25060000; together 0x2507C60D.
  assert.equal(maskedCrc32c(ascii("123456789")), (0x2507c60d + 0xa282ead8) % 2 ** 32);
  assert.equal(maskedCrc32c(new Uint8Array(0)), 0xa282ead8);
});

test("TFRecord framing: length, masked CRC of the length bytes, data, masked CRC of the data", () => {
  const record = frameRecord(ascii("abc"));
  assert.equal(record.length, 8 + 4 + 3 + 4);
  assert.deepEqual([...record.subarray(0, 8)], [3, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(record.readUInt32LE(8), maskedCrc32c(Uint8Array.from([3, 0, 0, 0, 0, 0, 0, 0])));
  assert.equal(record.subarray(12, 15).toString("ascii"), "abc");
  assert.equal(record.readUInt32LE(15), maskedCrc32c(ascii("abc")));
});

test("an Event with a scalar summary, byte for byte as the protobuf wire format spells it", () => {
  const dir = temporaryRunDir("tb-bytes");
  const writer = new TensorBoardWriter(dir, { now: 1700000000.25 });
  writer.addScalars(3, { a: 2 }, 1.5);
  writer.close();
  const records = readRecords(readFileSync(writer.path));
  // Event { wall_time (1, double) = 1.5; step (2, varint) = 3; summary (5) { value (1) { tag (1) = "a"; simple_value (2, float) = 2 } } }
  const expected = Buffer.from([
    0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,
    0x10, 0x03,
    0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, 0x61, 0x15, 0x00, 0x00, 0x00, 0x40,
  ]);
  assert.deepEqual([...records[1]], [...expected]);
  // The first record carries the file version: wall_time, step 0, file_version (3) = "brain.Event:2".
  const version = Buffer.concat([Buffer.from([0x09]), Buffer.alloc(8), Buffer.from([0x10, 0x00, 0x1a, 13]), ascii("brain.Event:2")]);
  version.writeDoubleLE(1700000000.25, 1);
  assert.deepEqual([...records[0]], [...version]);
  assert.match(writer.path, /events\.out\.tfevents\.1700000000\./);
});

test("a written file reads back (steps, tags, float32 values, a resume marker); a flipped byte fails its CRC", () => {
  const dir = temporaryRunDir("tb");
  const writer = new TensorBoardWriter(dir);
  writer.addSessionStart(0);
  writer.addScalars(1, { "train/loss": 0.1, "train/lr": 3e-4 });
  writer.addScalar("eval/accuracy", 0.875, 2 ** 40);
  writer.addScalars(7, { "train/loss": Number.NaN });
  writer.close();
  const files = readdirSync(dir);
  assert.equal(files.length, 1);
  const events = readEventFile(join(dir, files[0]));
  assert.equal(events.length, 5);
  assert.equal(events[0].fileVersion, "brain.Event:2");
  assert.equal(events[1].sessionStatus, 1);
  assert.deepEqual(events[2].scalars, { "train/loss": Math.fround(0.1), "train/lr": Math.fround(3e-4) });
  assert.deepEqual([events[3].step, events[3].scalars["eval/accuracy"]], [2 ** 40, 0.875]);
  assert.ok(Number.isNaN(events[4].scalars["train/loss"]));
  for (const event of events) assert.ok(Math.abs(event.wallTime - Date.now() / 1000) < 600);

  const bytes = readFileSync(join(dir, files[0]));
  bytes[bytes.length - 6] ^= 0x01;
  writeFileSync(join(dir, "corrupt"), bytes);
  assert.throws(() => readEventFile(join(dir, "corrupt")), /data CRC mismatch in record 4/);
  assert.deepEqual(decodeEvent(Buffer.alloc(0)), { wallTime: 0, step: 0, scalars: {} });
});
