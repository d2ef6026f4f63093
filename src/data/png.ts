// PNG decoding (all colour types and bit depths, Adam7 interlace) and encoding, over node:zlib.
// Spec: https://www.w3.org/TR/png/ . Pixel conversions follow what Pillow's Image.open(...).convert("RGB") gives.
import { deflateSync, inflateSync } from "node:zlib";

/** Decoded pixels before any colour conversion: `channels` samples per pixel, 8 bits each (16-bit input keeps its high byte). */
export interface PngPixels {
  width: number;
  height: number;
  /** 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. Palette images are expanded to 3 (or 4 with a tRNS chunk). */
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
  /** EXIF orientation from an eXIf chunk (1..8), if present. */
  exifOrientation?: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
// Refuse images whose decoded size would exhaust memory (a corrupt or hostile header), not real photographs.
const MAX_PIXELS = 1 << 28;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309, as PNG and zlib use it) of bytes[start, end). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b);
}

const readU32 = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

// Samples per pixel of each PNG colour type, and the bit depths the spec allows for it.
const COLOR_TYPES: Record<number, { samples: number; depths: number[] }> = {
  0: { samples: 1, depths: [1, 2, 4, 8, 16] },
  2: { samples: 3, depths: [8, 16] },
  3: { samples: 1, depths: [1, 2, 4, 8] },
  4: { samples: 2, depths: [8, 16] },
  6: { samples: 4, depths: [8, 16] },
};

// Adam7 passes: [xStart, yStart, xStep, yStep].
const ADAM7: [number, number, number, number][] = [
  [0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2],
];

/** Decode a PNG file's bytes. `name` is used in error messages (a path or a description). */
export function decodePng(bytes: Uint8Array, name: string): PngPixels {
  const fail = (what: string): never => {
    throw new Error(`${name}: invalid PNG: ${what}`);
  };
  if (!isPng(bytes)) fail("missing PNG signature");
  let offset = 8;
  let width = 0, height = 0, bitDepth = 0, colorType = -1, interlace = 0;
  let palette: Uint8Array | null = null;
  let transparency: Uint8Array | null = null;
  let exifOrientation: number | undefined;
  const idat: Uint8Array[] = [];
  let sawIhdr = false, sawIend = false;
  while (offset < bytes.length) {
    if (offset + 12 > bytes.length) fail(`truncated chunk header at byte ${offset} (file is ${bytes.length} bytes)`);
    const length = readU32(bytes, offset);
    const type = String.fromCharCode(bytes[offset + 4], bytes[offset + 5], bytes[offset + 6], bytes[offset + 7]);
    const dataStart = offset + 8;
    const dataEnd = dataStart + length;
    if (length > 0x7fffffff || dataEnd + 4 > bytes.length) fail(`chunk '${type}' at byte ${offset} runs past the end of the file (truncated?)`);
    const storedCrc = readU32(bytes, dataEnd);
    if (crc32(bytes, offset + 4, dataEnd) !== storedCrc) fail(`CRC mismatch in chunk '${type}' at byte ${offset} (corrupt file)`);
    const chunk = bytes.subarray(dataStart, dataEnd);
    if (!sawIhdr && type !== "IHDR") fail(`first chunk is '${type}', expected IHDR`);
    switch (type) {
      case "IHDR": {
        if (sawIhdr) fail("more than one IHDR chunk");
        if (length !== 13) fail(`IHDR has length ${length}, expected 13`);
        sawIhdr = true;
        width = readU32(chunk, 0);
        height = readU32(chunk, 4);
        bitDepth = chunk[8];
        colorType = chunk[9];
        interlace = chunk[12];
        if (width === 0 || height === 0) fail(`zero image size ${width}x${height}`);
        if (width * height > MAX_PIXELS) fail(`image size ${width}x${height} is too large`);
        const info = COLOR_TYPES[colorType];
        if (!info) fail(`unknown colour type ${colorType}`);
        if (!info.depths.includes(bitDepth)) fail(`bit depth ${bitDepth} is not allowed for colour type ${colorType}`);
        if (chunk[10] !== 0) fail(`unknown compression method ${chunk[10]}`);
        if (chunk[11] !== 0) fail(`unknown filter method ${chunk[11]}`);
        if (interlace > 1) fail(`unknown interlace method ${interlace}`);
        break;
      }
      case "PLTE":
        if (length % 3 !== 0 || length === 0 || length > 768) fail(`PLTE has length ${length}, expected a multiple of 3 up to 768`);
        palette = chunk;
        break;
      case "tRNS":
        transparency = chunk;
        break;
      case "IDAT":
        idat.push(chunk);
        break;
      case "eXIf":
        exifOrientation = readExifOrientation(chunk);
        break;
      case "IEND":
        sawIend = true;
        break;
      default:
        // Bit 5 of the first letter clear = critical chunk: we cannot render the image correctly without it.
        if ((bytes[offset + 4] & 0x20) === 0) fail(`unsupported critical chunk '${type}'`);
    }
    offset = dataEnd + 4;
    if (sawIend) break;
  }
  if (!sawIhdr) fail("no IHDR chunk");
  if (idat.length === 0) fail("no IDAT chunk (no image data; truncated file?)");
  if (colorType === 3 && !palette) fail("palette image without a PLTE chunk");
  if (!sawIend) fail("no IEND chunk: the file is truncated");

  const samples = COLOR_TYPES[colorType].samples;
  const bitsPerPixel = samples * bitDepth;
  const filterStride = Math.max(1, bitsPerPixel >> 3);
  const passes = interlace ? ADAM7 : [[0, 0, 1, 1] as [number, number, number, number]];
  let expected = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx), ph = Math.ceil((height - y0) / dy);
    if (pw > 0 && ph > 0) expected += ph * (1 + Math.ceil((pw * bitsPerPixel) / 8));
  }
  let raw: Uint8Array;
  try {
    // Some encoders leave a little extra data, which decoders ignore; far more than the image needs is refused.
    raw = inflateSync(Buffer.concat(idat), { maxOutputLength: expected + 65536 });
  } catch (e) {
    if ((e as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") fail(`image data is far longer than ${width}x${height} needs`);
    const reason = (e as Error).message;
    throw new Error(`${name}: invalid PNG: corrupt or truncated zlib image data (${reason})`);
  }
  if (raw.length < expected) fail(`image data is truncated: ${raw.length} bytes after decompression, ${expected} needed for ${width}x${height}`);

  // Unfilter each pass and scatter its samples into a full-size array of 8-bit samples.
  const out = new Uint8Array(width * height * samples);
  let pos = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((width - x0) / dx), ph = Math.ceil((height - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    const rowBytes = Math.ceil((pw * bitsPerPixel) / 8);
    let prev = new Uint8Array(rowBytes);
    let cur = new Uint8Array(rowBytes);
    for (let y = 0; y < ph; y++) {
      const filter = raw[pos++];
      unfilterRow(filter, raw.subarray(pos, pos + rowBytes), prev, cur, filterStride, () => fail(`unknown filter type ${filter} on row ${y}`));
      pos += rowBytes;
      const outRow = y0 + y * dy;
      scatterRow(cur, pw, samples, bitDepth, colorType, out, (outRow * width + x0) * samples, dx * samples);
      [prev, cur] = [cur, prev];
    }
  }

  if (colorType === 3) return { ...expandPalette(out, width, height, palette!, transparency, fail), exifOrientation };
  return { width, height, channels: samples as 1 | 2 | 3 | 4, data: out, exifOrientation };
}

function unfilterRow(filter: number, src: Uint8Array, prev: Uint8Array, cur: Uint8Array, bpp: number, bad: () => never): void {
  const n = src.length;
  switch (filter) {
    case 0:
      cur.set(src);
      break;
    case 1: // Sub
      for (let i = 0; i < n; i++) cur[i] = (src[i] + (i >= bpp ? cur[i - bpp] : 0)) & 0xff;
      break;
    case 2: // Up
      for (let i = 0; i < n; i++) cur[i] = (src[i] + prev[i]) & 0xff;
      break;
    case 3: // Average
      for (let i = 0; i < n; i++) cur[i] = (src[i] + (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1)) & 0xff;
      break;
    case 4: // Paeth
      for (let i = 0; i < n; i++) {
        const a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
        cur[i] = (src[i] + paeth(a, b, c)) & 0xff;
      }
      break;
    default:
      bad();
  }
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

// Writes one unfiltered row of `count` pixels, `samples` samples each, to out[start + i*step ...].
// Gray below 8 bits is scaled to 0..255 (1-bit: 0/255, 2-bit: x85, 4-bit: x17, as Pillow's L;1/L;2/L;4 unpackers);
// palette indices stay raw; 16-bit samples keep their high byte (as Pillow's ';16B' raw modes).
function scatterRow(row: Uint8Array, count: number, samples: number, depth: number, colorType: number, out: Uint8Array, start: number, step: number): void {
  if (depth === 8) {
    for (let i = 0; i < count; i++) for (let s = 0; s < samples; s++) out[start + i * step + s] = row[i * samples + s];
  } else if (depth === 16) {
    for (let i = 0; i < count; i++) for (let s = 0; s < samples; s++) out[start + i * step + s] = row[(i * samples + s) * 2];
  } else {
    const perByte = 8 / depth, mask = (1 << depth) - 1;
    const scale = colorType === 3 ? 1 : 255 / mask;
    for (let i = 0; i < count; i++) {
      const byte = row[Math.floor(i / perByte)];
      const shift = 8 - depth * ((i % perByte) + 1);
      out[start + i * step] = ((byte >> shift) & mask) * scale;
    }
  }
}

function expandPalette(indices: Uint8Array, width: number, height: number, palette: Uint8Array, trns: Uint8Array | null, fail: (w: string) => never): PngPixels {
  const entries = palette.length / 3;
  const channels = trns ? 4 : 3;
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i];
    // Out-of-range indices are an error in the spec; decoders (and Pillow) show them as black.
    if (index < entries) {
      data[i * channels] = palette[index * 3];
      data[i * channels + 1] = palette[index * 3 + 1];
      data[i * channels + 2] = palette[index * 3 + 2];
    }
    if (trns) data[i * channels + 3] = index < trns.length ? trns[index] : 255;
  }
  if (trns && trns.length > entries) fail(`tRNS has ${trns.length} entries but the palette only ${entries}`);
  return { width, height, channels: channels as 3 | 4, data };
}

/** Orientation tag (0x0112) of an EXIF/TIFF block (starting at its "II"/"MM" byte-order mark), or undefined. */
export function readExifOrientation(tiff: Uint8Array): number | undefined {
  if (tiff.length < 8) return undefined;
  const little = tiff[0] === 0x49 && tiff[1] === 0x49;
  if (!little && !(tiff[0] === 0x4d && tiff[1] === 0x4d)) return undefined;
  const u16 = (o: number) => (little ? tiff[o] | (tiff[o + 1] << 8) : (tiff[o] << 8) | tiff[o + 1]);
  const u32 = (o: number) => (little ? (tiff[o] | (tiff[o + 1] << 8) | (tiff[o + 2] << 16) | (tiff[o + 3] << 24)) >>> 0 : readU32(tiff, o));
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd + 2 > tiff.length) return undefined;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > tiff.length) return undefined;
    if (u16(entry) === 0x0112) {
      const value = u16(entry + 8);
      return value >= 1 && value <= 8 ? value : undefined;
    }
  }
  return undefined;
}

export interface PngEncodeInput {
  width: number;
  height: number;
  /** Interleaved 8-bit samples, row-major. */
  data: Uint8Array;
  /** Samples per pixel: 1 gray, 2 gray+alpha, 3 RGB (default), 4 RGBA. */
  channels?: 1 | 2 | 3 | 4;
}

/** Encode 8-bit pixels as a PNG (non-interlaced; per-row filter chosen by the minimum-sum-of-absolute-differences heuristic). */
export function encodePng(image: PngEncodeInput, options: { level?: number } = {}): Uint8Array {
  const channels = image.channels ?? 3;
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`encodePng: image size must be positive integers, got ${width}x${height}`);
  }
  if (data.length !== width * height * channels) {
    throw new Error(`encodePng: data has ${data.length} bytes, expected ${width}x${height}x${channels} = ${width * height * channels}`);
  }
  const colorType = { 1: 0, 2: 4, 3: 2, 4: 6 }[channels];
  const rowBytes = width * channels;
  const filtered = new Uint8Array(height * (rowBytes + 1));
  const candidate = new Uint8Array(rowBytes);
  const zeros = new Uint8Array(rowBytes);
  for (let y = 0; y < height; y++) {
    const row = data.subarray(y * rowBytes, (y + 1) * rowBytes);
    const prev = y > 0 ? data.subarray((y - 1) * rowBytes, y * rowBytes) : zeros;
    let bestFilter = 0, bestScore = Infinity;
    for (let filter = 0; filter <= 4; filter++) {
      const score = filterRow(filter, row, prev, channels, candidate);
      if (score < bestScore) [bestScore, bestFilter] = [score, filter];
    }
    filterRow(bestFilter, row, prev, channels, candidate);
    filtered[y * (rowBytes + 1)] = bestFilter;
    filtered.set(candidate, y * (rowBytes + 1) + 1);
  }
  const ihdr = new Uint8Array(13);
  writeU32(ihdr, 0, width);
  writeU32(ihdr, 4, height);
  ihdr[8] = 8;
  ihdr[9] = colorType;
  return assemblePng([
    ["IHDR", ihdr],
    ["IDAT", deflateSync(filtered, { level: options.level ?? 6 })],
    ["IEND", new Uint8Array(0)],
  ]);
}

// Filters a row into `out`; returns the sum of |signed byte| used to pick the filter.
function filterRow(filter: number, row: Uint8Array, prev: Uint8Array, bpp: number, out: Uint8Array): number {
  let score = 0;
  for (let i = 0; i < row.length; i++) {
    const a = i >= bpp ? row[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
    let predictor = 0;
    if (filter === 1) predictor = a;
    else if (filter === 2) predictor = b;
    else if (filter === 3) predictor = (a + b) >> 1;
    else if (filter === 4) predictor = paeth(a, b, c);
    const v = (row[i] - predictor) & 0xff;
    out[i] = v;
    score += v < 128 ? v : 256 - v;
  }
  return score;
}

function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Signature + chunks with lengths and CRCs. Exported for tests that build unusual PNGs by hand. */
export function assemblePng(chunks: [string, Uint8Array][]): Uint8Array {
  const total = 8 + chunks.reduce((n, [, d]) => n + 12 + d.length, 0);
  const out = new Uint8Array(total);
  out.set(PNG_SIGNATURE, 0);
  let o = 8;
  for (const [type, data] of chunks) {
    writeU32(out, o, data.length);
    for (let i = 0; i < 4; i++) out[o + 4 + i] = type.charCodeAt(i);
    out.set(data, o + 8);
    writeU32(out, o + 8 + data.length, crc32(out, o + 4, o + 8 + data.length));
    o += 12 + data.length;
  }
  return out;
}
