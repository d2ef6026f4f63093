import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { applyOrientation, decodeImage, encodePng, imageToTensor, loadImage, tensorToImage } from "../../src/data/image.js";
import { assemblePng, crc32, decodePng } from "../../src/data/png.js";
import { liveTensorCount } from "../../src/torch/index.js";
import { seededRandom } from "../../src/torch/seeded_random.js";
import { GOLDENS_PATH, goldensMissing, IMAGE_FIXTURES, readGoldensMeta, readSafetensors } from "./golden_files.js";
import { JPEG_CORPUS } from "./jpeg_corpus.js";

// Deterministic pseudo-random bytes (mulberry32).
function randomBytes(n: number, seed: number, max = 256): Uint8Array {
  const random = seededRandom(seed);
  return Uint8Array.from({ length: n }, () => (random() * max) | 0);
}

// --- an independent PNG writer for hand-built test files -------------------------------------------------------

function paethPredictor(a: number, b: number, c: number): number {
  const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

// Filters one packed scanline with the given type (PNG spec section 9), returning filter byte + data.
function filterLine(type: number, line: Uint8Array, prev: Uint8Array, bpp: number): Uint8Array {
  const out = new Uint8Array(line.length + 1);
  out[0] = type;
  for (let i = 0; i < line.length; i++) {
    const a = i >= bpp ? line[i - bpp] : 0, b = prev[i] ?? 0, c = i >= bpp ? prev[i - bpp] ?? 0 : 0;
    const predictor = [0, a, b, Math.floor((a + b) / 2), paethPredictor(a, b, c)][type];
    out[i + 1] = (line[i] - predictor + 256) % 256;
  }
  return out;
}

// Packs per-pixel sample values (each < 2^depth) into a scanline.
function packLine(values: number[], depth: number): Uint8Array {
  if (depth === 16) {
    const out = new Uint8Array(values.length * 2);
    values.forEach((v, i) => {
      out[2 * i] = v >> 8;
      out[2 * i + 1] = v & 255;
    });
    return out;
  }
  const out = new Uint8Array(Math.ceil((values.length * depth) / 8));
  values.forEach((v, i) => {
    const bit = i * depth;
    out[bit >> 3] |= v << (8 - depth - (bit & 7));
  });
  return out;
}

interface PngSpec {
  width: number;
  height: number;
  colorType: number;
  depth: number;
  /** samples[y][x * samplesPerPixel + s] */
  samples: number[][];
  filter?: (y: number) => number;
  interlace?: boolean;
  palette?: number[];
  trns?: number[];
  extra?: [string, Uint8Array][];
}

const SAMPLES_PER_PIXEL: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function buildPng(spec: PngSpec): Uint8Array {
  const spp = SAMPLES_PER_PIXEL[spec.colorType];
  const bpp = Math.max(1, (spp * spec.depth) >> 3);
  const filterOf = spec.filter ?? ((y: number) => y % 5);
  const passes = spec.interlace
    ? [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]
    : [[0, 0, 1, 1]];
  const parts: Uint8Array[] = [];
  for (const [x0, y0, dx, dy] of passes) {
    let prev: Uint8Array = new Uint8Array(0);
    let row = 0;
    for (let y = y0; y < spec.height; y += dy) {
      const values: number[] = [];
      for (let x = x0; x < spec.width; x += dx) for (let s = 0; s < spp; s++) values.push(spec.samples[y][x * spp + s]);
      if (values.length === 0) continue;
      const line = packLine(values, spec.depth);
      parts.push(filterLine(filterOf(row++), line, prev, bpp));
      prev = line;
    }
  }
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, spec.width);
  new DataView(ihdr.buffer).setUint32(4, spec.height);
  ihdr.set([spec.depth, spec.colorType, 0, 0, spec.interlace ? 1 : 0], 8);
  const chunks: [string, Uint8Array][] = [["IHDR", ihdr]];
  if (spec.palette) chunks.push(["PLTE", Uint8Array.from(spec.palette)]);
  if (spec.trns) chunks.push(["tRNS", Uint8Array.from(spec.trns)]);
  chunks.push(...(spec.extra ?? []));
  chunks.push(["IDAT", deflateSync(Buffer.concat(parts))]);
  chunks.push(["IEND", new Uint8Array(0)]);
  return assemblePng(chunks);
}

function samplesFrom(bytes: Uint8Array, width: number, height: number, spp: number): number[][] {
  return Array.from({ length: height }, (_, y) => Array.from(bytes.subarray(y * width * spp, (y + 1) * width * spp)));
}

// --- PNG -----------------------------------------------------------------------------------------------------

test("encodePng round-trips gray, gray+alpha, RGB and RGBA through decodePng", () => {
  for (const channels of [1, 2, 3, 4] as const) {
    const width = 37, height = 23;
    // smooth ramps plus noise, so every filter type gets picked for some row
    const data = randomBytes(width * height * channels, channels, 40);
    for (let i = 0; i < data.length; i++) data[i] += (i % (width * channels)) * 3 % 200;
    const png = encodePng({ width, height, data, channels });
    const decoded = decodePng(png, "roundtrip.png");
    assert.equal(decoded.channels, channels);
    assert.deepEqual([decoded.width, decoded.height], [width, height]);
    assert.deepEqual(decoded.data, data);
  }
});

test("crc32 gives the published check values; encodePng's chunks carry them", () => {
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  assert.equal(crc32(ascii("123456789")), 0xcbf43926);
  assert.equal(crc32(ascii("IEND")), 0xae426082);
  assert.equal(crc32(new Uint8Array(0)), 0);
  const png = encodePng({ width: 1, height: 1, data: Uint8Array.from([1, 2, 3]) });
  // every PNG ends with the same empty IEND chunk: length 0, "IEND", CRC AE 42 60 82
  assert.deepEqual(Array.from(png.subarray(png.length - 12)), [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
  // IHDR of a 1x1 8-bit RGB image (zlib.crc32 of b"IHDR" + its 13 bytes = 0x907753DE)
  assert.deepEqual(Array.from(png.subarray(8, 33)), [0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0, 0x90, 0x77, 0x53, 0xde]);
});

test("decodeImage gives RGB: gray repeated, alpha split off (not composited)", () => {
  const data = Uint8Array.from([10, 200, 20, 100, 30, 0, 40, 255]); // 2x2 gray+alpha
  const img = decodeImage(encodePng({ width: 2, height: 2, data, channels: 2 }), "ga.png");
  assert.deepEqual(Array.from(img.data), [10, 10, 10, 20, 20, 20, 30, 30, 30, 40, 40, 40]);
  assert.deepEqual(Array.from(img.alpha!), [200, 100, 0, 255]);
  assert.equal(img.format, "png");
});

test("each PNG filter type (None, Sub, Up, Average, Paeth) decodes to the original pixels", () => {
  for (const [colorType, depth] of [[2, 8], [0, 8], [6, 8], [2, 16], [0, 4]]) {
    const spp = SAMPLES_PER_PIXEL[colorType];
    const width = 19, height = 9, max = 2 ** depth;
    const flat = randomBytes(width * height * spp, colorType * 31 + depth, Math.min(max, 256));
    const samples = samplesFrom(flat, width, height, spp).map((row) => row.map((v) => (depth === 16 ? v * 257 : v)));
    for (let filter = 0; filter <= 4; filter++) {
      const png = buildPng({ width, height, colorType, depth, samples, filter: () => filter });
      const decoded = decodePng(png, "filters.png");
      const expected = samples.flat().map((v) => (depth === 16 ? v >> 8 : depth === 4 ? v * 17 : v));
      assert.deepEqual(Array.from(decoded.data), expected, `colour type ${colorType}, depth ${depth}, filter ${filter}`);
    }
  }
});

test("palette PNGs at 1, 2, 4 and 8 bits expand through PLTE, with tRNS alpha", () => {
  for (const depth of [1, 2, 4, 8]) {
    const entries = Math.min(2 ** depth, 7);
    const palette = Array.from(randomBytes(entries * 3, depth));
    const trns = depth === 8 ? undefined : [0, 128]; // shorter than the palette: the rest are opaque
    const width = 13, height = 5;
    const indices = randomBytes(width * height, depth + 100, entries);
    const png = buildPng({ width, height, colorType: 3, depth, samples: samplesFrom(indices, width, height, 1), palette, trns });
    const img = decodeImage(png, `palette${depth}.png`);
    const expectedRgb = Array.from(indices).flatMap((i) => palette.slice(i * 3, i * 3 + 3));
    assert.deepEqual(Array.from(img.data), expectedRgb, `depth ${depth}`);
    if (trns) assert.deepEqual(Array.from(img.alpha!), Array.from(indices, (i) => trns[i] ?? 255));
    else assert.equal(img.alpha, undefined);
  }
});

test("gray below 8 bits scales to 0..255 as Pillow does; 16-bit samples keep their high byte", () => {
  const cases: [number, number[], number[]][] = [
    [1, [0, 1, 1, 0], [0, 255, 255, 0]],
    [2, [0, 1, 2, 3], [0, 85, 170, 255]],
    [4, [0, 5, 10, 15], [0, 85, 170, 255]],
    [16, [0x0000, 0x12ab, 0xff00, 0xffff], [0x00, 0x12, 0xff, 0xff]],
  ];
  for (const [depth, values, expected] of cases) {
    const img = decodeImage(buildPng({ width: 4, height: 1, colorType: 0, depth, samples: [values] }), `gray${depth}.png`);
    assert.deepEqual(Array.from(img.data), expected.flatMap((v) => [v, v, v]), `depth ${depth}`);
  }
  const rgba16 = decodePng(buildPng({ width: 1, height: 1, colorType: 6, depth: 16, samples: [[0x1234, 0xabcd, 0x00ff, 0x8001]] }), "rgba16.png");
  assert.deepEqual(Array.from(rgba16.data), [0x12, 0xab, 0x00, 0x80]);
});

test("Adam7-interlaced PNGs decode to the same pixels as non-interlaced ones", () => {
  for (const [colorType, depth, width, height] of [[2, 8, 13, 11], [0, 1, 10, 7], [3, 4, 9, 9], [6, 8, 1, 1], [0, 8, 3, 17]]) {
    const spp = SAMPLES_PER_PIXEL[colorType];
    const max = colorType === 3 ? 4 : Math.min(2 ** depth, 256);
    const flat = randomBytes(width * height * spp, width * 7 + height, max);
    const samples = samplesFrom(flat, width, height, spp);
    const palette = colorType === 3 ? Array.from(randomBytes(12, 5)) : undefined;
    const plain = decodePng(buildPng({ width, height, colorType, depth, samples, palette }), "plain.png");
    const interlaced = decodePng(buildPng({ width, height, colorType, depth, samples, palette, interlace: true }), "adam7.png");
    assert.deepEqual(interlaced.data, plain.data, `${width}x${height} colour type ${colorType} depth ${depth}`);
  }
});

// --- EXIF orientation ----------------------------------------------------------------------------------------

// Primitive transforms written independently of applyOrientation: flips and the main-diagonal transpose.
type Pix = { width: number; height: number; data: Uint8Array };
const get = (p: Pix, x: number, y: number) => p.data[y * p.width + x];
const build = (width: number, height: number, f: (x: number, y: number) => number): Pix => {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = f(x, y);
  return { width, height, data };
};
const flipH = (p: Pix) => build(p.width, p.height, (x, y) => get(p, p.width - 1 - x, y));
const flipV = (p: Pix) => build(p.width, p.height, (x, y) => get(p, x, p.height - 1 - y));
const transpose = (p: Pix) => build(p.height, p.width, (x, y) => get(p, y, x));

test("applyOrientation follows EXIF orientations 1..8 as PIL's exif_transpose", () => {
  const src = build(3, 2, (x, y) => 10 * y + x);
  const expected: Record<number, Pix> = {
    1: src,
    2: flipH(src),
    3: flipV(flipH(src)),
    4: flipV(src),
    5: transpose(src),
    6: flipH(transpose(src)), // rotate 90 degrees clockwise
    7: flipV(flipH(transpose(src))),
    8: flipV(transpose(src)), // rotate 90 degrees counter-clockwise
  };
  for (let o = 1; o <= 8; o++) {
    const got = applyOrientation(src, o, 1);
    assert.deepEqual([got.width, got.height, Array.from(got.data)], [expected[o].width, expected[o].height, Array.from(expected[o].data)], `orientation ${o}`);
  }
  // Clockwise rotation puts the top-left pixel at the top-right.
  assert.equal(get(expected[6], expected[6].width - 1, 0), get(src, 0, 0));
});

// A little-endian TIFF block with one IFD entry: Orientation (0x0112), SHORT, count 1.
function exifWithOrientation(orientation: number): Uint8Array {
  return Uint8Array.from([0x49, 0x49, 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, orientation, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

test("a PNG eXIf orientation is reported, and applied only when asked", () => {
  const samples = samplesFrom(Uint8Array.from([1, 2, 3, 4, 5, 6]), 3, 2, 1);
  const png = buildPng({ width: 3, height: 2, colorType: 0, depth: 8, samples, extra: [["eXIf", exifWithOrientation(6)]] });
  const asStored = decodeImage(png, "exif.png");
  assert.equal(asStored.exifOrientation, 6);
  assert.deepEqual([asStored.width, asStored.height], [3, 2]);
  const oriented = decodeImage(png, "exif.png", { applyExifOrientation: true });
  assert.deepEqual([oriented.width, oriented.height], [2, 3]);
  assert.deepEqual(Array.from(oriented.data).filter((_, i) => i % 3 === 0), [4, 1, 5, 2, 6, 3]);
});

// --- JPEG ----------------------------------------------------------------------------------------------------

test("JPEGs (restart markers, 4:2:0/4:2:2/4:4:0/4:1:1, RGB, CMYK, progressive gray) decode exactly as Pillow", () => {
  for (const [name, entry] of Object.entries(JPEG_CORPUS)) {
    if (!entry.rgbSha256) continue;
    const img = decodeImage(Buffer.from(entry.base64, "base64"), name);
    assert.equal(img.format, "jpeg");
    assert.deepEqual([img.width, img.height], [23, 17], name);
    assert.deepEqual(Array.from(img.data.subarray(0, 3)), entry.first, `${name} first pixel`);
    assert.deepEqual(Array.from(img.data.subarray(img.data.length - 3)), entry.last, `${name} last pixel`);
    assert.equal(createHash("sha256").update(img.data).digest("hex"), entry.rgbSha256, `${name} pixels differ from libjpeg-turbo's`);
  }
});

test("arithmetic-coded JPEG is refused with a clear error", () => {
  assert.throws(() => decodeImage(Buffer.from(JPEG_CORPUS["arithmetic.jpg"].base64, "base64"), "arith.jpg"), /^Error: arith\.jpg: invalid JPEG: arithmetic-coded JPEG is not supported/);
});

// Every prefix of a file, and files with bytes flipped, must either decode or throw an Error that names the file.
function assertFailsCleanly(name: string, bytes: Uint8Array, mustThrow: boolean): void {
  let threw = false;
  try {
    decodeImage(bytes, name);
  } catch (e) {
    threw = true;
    assert.ok(e instanceof Error && e.constructor === Error, `${name}: expected a plain Error, got ${String(e)}`);
    assert.ok(e.message.startsWith(`${name}: `), `${name}: message does not name the file: ${e.message}`);
  }
  if (mustThrow) assert.ok(threw, `${name}: decoding should have failed`);
}

test("truncated and corrupted JPEGs throw Errors naming the file, never crash", () => {
  for (const source of ["baseline_420_restart.jpg", "progressive_422_restart.jpg", "gray_progressive.jpg"]) {
    const bytes = Buffer.from(JPEG_CORPUS[source].base64, "base64");
    for (let cut = 0; cut < bytes.length; cut += 5) assertFailsCleanly(`cut${cut}_${source}`, bytes.subarray(0, cut), true);
    const flips = randomBytes(400, source.length, bytes.length);
    for (let i = 0; i < flips.length; i += 2) {
      const corrupt = Uint8Array.from(bytes);
      corrupt[flips[i]] ^= 1 + (flips[i + 1] % 255);
      assertFailsCleanly(`flip${i}_${source}`, corrupt, false);
    }
  }
  assert.throws(() => decodeImage(Buffer.from(JPEG_CORPUS["baseline_411.jpg"].base64, "base64").subarray(0, 400), "short.jpg"), /short\.jpg: invalid JPEG: truncated/);
});

test("truncated and corrupted PNGs throw Errors naming the file and the problem", () => {
  const width = 16, height = 9;
  const png = encodePng({ width, height, data: randomBytes(width * height * 3, 9) });
  for (let cut = 0; cut < png.length; cut += 3) assertFailsCleanly(`cut${cut}.png`, png.subarray(0, cut), true);
  const flips = randomBytes(300, 77, png.length);
  for (let i = 0; i < flips.length; i += 2) {
    const corrupt = Uint8Array.from(png);
    corrupt[flips[i]] ^= 1 + (flips[i + 1] % 255);
    assertFailsCleanly(`flip${i}.png`, corrupt, true); // the signature check or a chunk CRC always catches it
  }

  const crcBroken = Uint8Array.from(png);
  crcBroken[20] ^= 0xff; // inside IHDR
  assert.throws(() => decodeImage(crcBroken, "crc.png"), /crc\.png: invalid PNG: CRC mismatch in chunk 'IHDR'/);
  assert.throws(() => decodeImage(png.subarray(0, png.length - 20), "short.png"), /short\.png: invalid PNG: .*(truncated|runs past)/);
  assert.throws(() => decodeImage(new Uint8Array(0), "empty.png"), /empty\.png: not an image file \(PNG, JPEG, GIF, BMP, WebP or TIFF; first bytes: none, the file is empty\)/);
  assert.throws(() => decodeImage(Buffer.from("hello world"), "text.png"), /text\.png: not an image file \(PNG, JPEG, GIF, BMP, WebP or TIFF; first bytes: 68 65 6c/);

  const ihdr = (depth: number, colorType: number) => {
    const b = new Uint8Array(13);
    b.set([0, 0, 0, 2, 0, 0, 0, 2, depth, colorType, 0, 0, 0]);
    return b;
  };
  const badDepth = assemblePng([["IHDR", ihdr(3, 2)], ["IDAT", deflateSync(new Uint8Array(14))], ["IEND", new Uint8Array(0)]]);
  assert.throws(() => decodeImage(badDepth, "depth.png"), /depth\.png: invalid PNG: bit depth 3 is not allowed for colour type 2/);
  const noPalette = assemblePng([["IHDR", ihdr(8, 3)], ["IDAT", deflateSync(new Uint8Array(6))], ["IEND", new Uint8Array(0)]]);
  assert.throws(() => decodeImage(noPalette, "nopal.png"), /nopal\.png: invalid PNG: palette image without a PLTE chunk/);
  const badFilter = assemblePng([["IHDR", ihdr(8, 0)], ["IDAT", deflateSync(Uint8Array.from([7, 1, 2, 0, 3, 4]))], ["IEND", new Uint8Array(0)]]);
  assert.throws(() => decodeImage(badFilter, "filter.png"), /filter\.png: invalid PNG: unknown filter type 7 on row 0/);
  const badZlib = assemblePng([["IHDR", ihdr(8, 0)], ["IDAT", Uint8Array.from([1, 2, 3, 4, 5, 6])], ["IEND", new Uint8Array(0)]]);
  assert.throws(() => decodeImage(badZlib, "zlib.png"), /zlib\.png: invalid PNG: corrupt or truncated zlib image data/);
  const shortData = assemblePng([["IHDR", ihdr(8, 0)], ["IDAT", deflateSync(Uint8Array.from([0, 1, 2]))], ["IEND", new Uint8Array(0)]]);
  assert.throws(() => decodeImage(shortData, "rows.png"), /rows\.png: invalid PNG: image data is truncated: 3 bytes after decompression, 6 needed for 2x2/);
  const noData = assemblePng([["IHDR", ihdr(8, 0)], ["IEND", new Uint8Array(0)]]);
  assert.throws(() => decodeImage(noData, "nodata.png"), /nodata\.png: invalid PNG: no IDAT chunk/);
});

test("loadImage names the path when the file is missing or not an image", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-image-"));
  try {
    assert.throws(() => loadImage(join(dir, "missing.png")), /missing\.png: cannot read image file/);
    writeFileSync(join(dir, "notes.jpg"), "not an image");
    assert.throws(() => loadImage(join(dir, "notes.jpg")), new RegExp(`${join(dir, "notes.jpg").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: not an image file`));
    const path = join(dir, "ok.png");
    writeFileSync(path, encodePng({ width: 2, height: 1, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) }));
    assert.deepEqual(Array.from(loadImage(path).data), [1, 2, 3, 4, 5, 6]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// --- tensors -------------------------------------------------------------------------------------------------

test("imageToTensor gives [3, H, W] channels-first uint8 or float32 / 255, and tensorToImage inverts it", () => {
  const before = liveTensorCount();
  const img = { width: 3, height: 2, data: Uint8Array.from({ length: 18 }, (_, i) => i * 14) };
  const t = imageToTensor(img);
  assert.deepEqual(t.shape, [3, 2, 3]);
  assert.equal(t.dtype, "uint8");
  // element [c, y, x] = data[(y * W + x) * 3 + c]
  assert.deepEqual(Array.from(t.data() as Uint8Array), [0, 42, 84, 126, 168, 210, 14, 56, 98, 140, 182, 224, 28, 70, 112, 154, 196, 238]);
  const f = imageToTensor(img, { dtype: "float32" });
  assert.equal(f.dtype, "float32");
  const fv = f.data() as Float32Array;
  assert.ok(Math.abs(fv[1] - 42 / 255) < 1e-7 && Math.abs(fv[17] - 238 / 255) < 1e-7);
  assert.deepEqual(tensorToImage(t), img);
  assert.deepEqual(tensorToImage(f), img);
  t.dispose();
  f.dispose();
  assert.equal(liveTensorCount(), before);
  assert.throws(() => imageToTensor({ width: 3, height: 2, data: new Uint8Array(5) }), /imageToTensor: RgbImage data has 5 bytes, expected 3x2x3 = 18/);
});

// --- parity with Pillow on the fixture files -----------------------------------------------------------------

test("fixture PNG/JPEG files decode to exactly the arrays Pillow gives", { skip: goldensMissing }, () => {
  const goldens = readSafetensors(GOLDENS_PATH);
  const meta = readGoldensMeta();
  assert.ok(Object.values(meta.restart_markers).some(Boolean), "the fixtures should include a JPEG with restart markers");
  for (const name of meta.files) {
    const img = loadImage(join(IMAGE_FIXTURES, name));
    const expected = goldens.get(`decoded/${name}`)!;
    assert.deepEqual([img.height, img.width, 3], expected.shape, name);
    let differing = 0;
    for (let i = 0; i < expected.data.length; i++) if (img.data[i] !== expected.data[i]) differing++;
    assert.equal(differing, 0, `${name}: ${differing} of ${expected.data.length} samples differ from Pillow`);
    const transposed = goldens.get(`decoded_exif/${name}`);
    if (transposed) {
      const oriented = loadImage(join(IMAGE_FIXTURES, name), { applyExifOrientation: true });
      assert.deepEqual([oriented.height, oriented.width, 3], transposed.shape, `${name} (EXIF applied)`);
      assert.deepEqual(oriented.data, transposed.data, `${name} (EXIF applied)`);
    }
  }
});
