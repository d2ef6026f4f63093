// JPEG decoding: baseline and progressive Huffman-coded, 8-bit, 1/3/4 components.
// The integer steps reproduce libjpeg(-turbo)'s defaults, which Pillow uses, so pixels match Image.open(...).convert("RGB"):
// the "islow" IDCT (jidctint.c), "fancy" triangle chroma upsampling (jdsample.c) and fixed-point YCbCr->RGB (jdcolor.c).
// Spec: ITU-T T.81. Not supported (clear errors): arithmetic coding, lossless, hierarchical, 12-bit.
import { readExifOrientation } from "./png.js";

export interface JpegPixels {
  width: number;
  height: number;
  /** 1 gray, 3 RGB (CMYK/YCCK files are converted to RGB as Pillow's convert("RGB") does). */
  channels: 1 | 3;
  data: Uint8Array;
  /** EXIF orientation (1..8) from an APP1 Exif segment, if present. */
  exifOrientation?: number;
}

export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

// Zigzag index -> natural (row-major) index within an 8x8 block.
const NATURAL_ORDER = new Uint8Array([
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
  28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
  47, 55, 62, 63,
]);
const MAX_PIXELS = 1 << 28;

interface Component {
  id: number;
  h: number;
  v: number;
  quantIndex: number;
  quant: Int32Array | null; // latched when the component's first scan starts, as libjpeg does
  blocksPerLine: number; // blocks covering the component's own samples
  blocksPerColumn: number;
  blocksPerLineAlloc: number; // blocks covering whole MCUs (interleaved scans address these)
  blocksPerColumnAlloc: number;
  coefs: Int16Array;
  predictor: number;
  dcTable: Uint16Array | null;
  acTable: Uint16Array | null;
}

class JpegError extends Error {}

/** Decode a JPEG file's bytes. `name` is used in error messages (a path or a description). */
export function decodeJpeg(bytes: Uint8Array, name: string): JpegPixels {
  try {
    return new JpegDecoder(bytes).decode();
  } catch (e) {
    if (e instanceof JpegError) throw new Error(`${name}: invalid JPEG: ${e.message}`);
    throw e;
  }
}

class JpegDecoder {
  private offset = 2;
  private quantTables: (Int32Array | null)[] = [null, null, null, null];
  private dcTables: (Uint16Array | null)[] = [null, null, null, null];
  private acTables: (Uint16Array | null)[] = [null, null, null, null];
  private components: Component[] = [];
  private width = 0;
  private height = 0;
  private progressive = false;
  private maxH = 1;
  private maxV = 1;
  private mcusPerLine = 0;
  private mcusPerColumn = 0;
  private restartInterval = 0;
  private sawJfif = false;
  private adobeTransform = -1;
  private exifOrientation: number | undefined;
  private scans = 0;

  constructor(private readonly bytes: Uint8Array) {}

  decode(): JpegPixels {
    const b = this.bytes;
    if (!isJpeg(b)) throw new JpegError("missing SOI marker (not a JPEG file)");
    let sawEoi = false;
    while (!sawEoi) {
      const marker = this.nextMarker();
      if (marker === -1) break;
      if (marker === 0xd9) {
        sawEoi = true;
        break;
      }
      if (marker >= 0xd0 && marker <= 0xd7) continue; // stray RST outside a scan: libjpeg ignores it
      if (marker === 0x01) continue; // TEM has no length
      const segment = this.readSegment(marker);
      switch (marker) {
        case 0xc0: case 0xc1: case 0xc2:
          this.readFrame(segment, marker === 0xc2);
          break;
        case 0xc3: case 0xc5: case 0xc6: case 0xc7: case 0xcb: case 0xcd: case 0xce: case 0xcf:
          throw new JpegError(`unsupported JPEG process (SOF${marker - 0xc0}: lossless or hierarchical)`);
        case 0xc9: case 0xca:
          throw new JpegError("arithmetic-coded JPEG is not supported");
        case 0xc4:
          this.readHuffmanTables(segment);
          break;
        case 0xcc:
          throw new JpegError("arithmetic-coded JPEG is not supported (DAC marker)");
        case 0xdb:
          this.readQuantTables(segment);
          break;
        case 0xdd:
          if (segment.length < 2) throw new JpegError("DRI segment too short");
          this.restartInterval = (segment[0] << 8) | segment[1];
          break;
        case 0xda:
          this.readScan(segment);
          break;
        case 0xe0:
          if (segment.length >= 5 && String.fromCharCode(...segment.subarray(0, 5)) === "JFIF\0") this.sawJfif = true;
          break;
        case 0xe1:
          if (segment.length >= 14 && String.fromCharCode(...segment.subarray(0, 6)) === "Exif\0\0") {
            this.exifOrientation = readExifOrientation(segment.subarray(6));
          }
          break;
        case 0xee:
          if (segment.length >= 12 && String.fromCharCode(...segment.subarray(0, 5)) === "Adobe") this.adobeTransform = segment[11];
          break;
        case 0xdc:
          throw new JpegError("DNL marker (image height given after the scan) is not supported");
        default:
          break; // APPn, COM and others carry nothing we need
      }
    }
    if (this.components.length === 0) throw new JpegError("no frame header (SOF) found");
    if (this.scans === 0) throw new JpegError("no scan (SOS) found: the file holds no image data (truncated?)");
    // libjpeg only warns at a missing EOI, but Pillow then reports the file as truncated; so do we.
    if (!sawEoi) throw new JpegError(`truncated: the file ends after scan ${this.scans} without an EOI marker`);
    return this.output();
  }

  // Finds the next marker from this.offset, skipping fill bytes; returns its code or -1 at end of data.
  private nextMarker(): number {
    const b = this.bytes;
    let o = this.offset;
    for (;;) {
      while (o < b.length && b[o] !== 0xff) o++; // garbage between segments: libjpeg skips it with a warning
      while (o < b.length && b[o] === 0xff) o++;
      if (o >= b.length) {
        this.offset = o;
        return -1;
      }
      if (b[o] !== 0x00) break; // 0xFF00 is a stuffed data byte left after a scan, not a marker
      o++;
    }
    this.offset = o + 1;
    return b[o];
  }

  private readSegment(marker: number): Uint8Array {
    const b = this.bytes;
    if (this.offset + 2 > b.length) throw new JpegError(`truncated: marker 0xFF${hex(marker)} at the end of the file has no length`);
    const length = (b[this.offset] << 8) | b[this.offset + 1];
    if (length < 2) throw new JpegError(`marker 0xFF${hex(marker)} has invalid length ${length}`);
    const end = this.offset + length;
    if (end > b.length) throw new JpegError(`truncated: segment 0xFF${hex(marker)} at byte ${this.offset - 2} needs ${length} bytes, file ends first`);
    const segment = b.subarray(this.offset + 2, end);
    this.offset = end;
    return segment;
  }

  private readQuantTables(s: Uint8Array): void {
    let o = 0;
    while (o < s.length) {
      const precision = s[o] >> 4, index = s[o] & 15;
      o++;
      if (index > 3) throw new JpegError(`DQT table index ${index} out of range 0..3`);
      const size = precision ? 128 : 64;
      if (o + size > s.length) throw new JpegError("DQT segment too short");
      const table = new Int32Array(64);
      for (let k = 0; k < 64; k++) table[NATURAL_ORDER[k]] = precision ? (s[o + 2 * k] << 8) | s[o + 2 * k + 1] : s[o + k];
      this.quantTables[index] = table;
      o += size;
    }
  }

  private readHuffmanTables(s: Uint8Array): void {
    let o = 0;
    while (o < s.length) {
      if (o + 17 > s.length) throw new JpegError("DHT segment too short");
      const tableClass = s[o] >> 4, index = s[o] & 15;
      if (tableClass > 1 || index > 3) throw new JpegError(`DHT table class ${tableClass} / index ${index} out of range`);
      const counts = s.subarray(o + 1, o + 17);
      let total = 0;
      for (const c of counts) total += c;
      o += 17;
      if (o + total > s.length || total > 256) throw new JpegError("DHT segment too short for its symbol counts");
      const table = buildHuffmanLookup(counts, s.subarray(o, o + total));
      o += total;
      (tableClass === 0 ? this.dcTables : this.acTables)[index] = table;
    }
  }

  private readFrame(s: Uint8Array, progressive: boolean): void {
    if (this.components.length) throw new JpegError("more than one frame header (SOF)");
    if (s.length < 6) throw new JpegError("SOF segment too short");
    const precision = s[0];
    if (precision !== 8) throw new JpegError(`${precision}-bit samples are not supported (only 8-bit)`);
    this.height = (s[1] << 8) | s[2];
    this.width = (s[3] << 8) | s[4];
    const count = s[5];
    if (this.width === 0 || this.height === 0) throw new JpegError(`image size ${this.width}x${this.height} is not supported (zero or given later by DNL)`);
    if (this.width * this.height > MAX_PIXELS) throw new JpegError(`image size ${this.width}x${this.height} is too large`);
    if (count !== 1 && count !== 3 && count !== 4) throw new JpegError(`${count} components are not supported (1, 3 or 4)`);
    if (s.length < 6 + 3 * count) throw new JpegError("SOF segment too short for its components");
    this.progressive = progressive;
    for (let i = 0; i < count; i++) {
      const id = s[6 + 3 * i], h = s[7 + 3 * i] >> 4, v = s[7 + 3 * i] & 15, quantIndex = s[8 + 3 * i];
      if (h < 1 || h > 4 || v < 1 || v > 4) throw new JpegError(`component ${id} has invalid sampling factors ${h}x${v}`);
      if (quantIndex > 3) throw new JpegError(`component ${id} uses quantization table ${quantIndex} (0..3 allowed)`);
      this.components.push({
        id, h, v, quantIndex, quant: null, blocksPerLine: 0, blocksPerColumn: 0, blocksPerLineAlloc: 0, blocksPerColumnAlloc: 0,
        coefs: new Int16Array(0), predictor: 0, dcTable: null, acTable: null,
      });
    }
    this.maxH = Math.max(...this.components.map((c) => c.h));
    this.maxV = Math.max(...this.components.map((c) => c.v));
    this.mcusPerLine = Math.ceil(this.width / (8 * this.maxH));
    this.mcusPerColumn = Math.ceil(this.height / (8 * this.maxV));
    for (const c of this.components) {
      c.blocksPerLine = Math.ceil(Math.ceil((this.width * c.h) / this.maxH) / 8);
      c.blocksPerColumn = Math.ceil(Math.ceil((this.height * c.v) / this.maxV) / 8);
      c.blocksPerLineAlloc = this.mcusPerLine * c.h;
      c.blocksPerColumnAlloc = this.mcusPerColumn * c.v;
      c.coefs = new Int16Array(c.blocksPerLineAlloc * c.blocksPerColumnAlloc * 64);
    }
  }

  private readScan(s: Uint8Array): void {
    if (!this.components.length) throw new JpegError("scan (SOS) before the frame header (SOF)");
    const count = s[0];
    if (count < 1 || count > 4 || s.length < 1 + 2 * count + 3) throw new JpegError("SOS segment malformed");
    const scanComponents: Component[] = [];
    for (let i = 0; i < count; i++) {
      const id = s[1 + 2 * i], tables = s[2 + 2 * i];
      const c = this.components.find((x) => x.id === id);
      if (!c) throw new JpegError(`scan refers to unknown component ${id}`);
      c.dcTable = this.dcTables[tables >> 4];
      c.acTable = this.acTables[tables & 15];
      if (!c.quant) {
        const q = this.quantTables[c.quantIndex];
        if (!q) throw new JpegError(`component ${id} uses quantization table ${c.quantIndex}, which was never defined`);
        c.quant = q.slice();
      }
      scanComponents.push(c);
    }
    const p = 1 + 2 * count;
    const ss = s[p], se = s[p + 1], ah = s[p + 2] >> 4, al = s[p + 2] & 15;
    if (this.progressive) {
      if (ss > se || se > 63 || (ss === 0 && se !== 0) || (ss > 0 && count !== 1)) throw new JpegError(`invalid progressive scan parameters Ss=${ss} Se=${se} for ${count} components`);
    }
    for (const c of scanComponents) {
      const needsDc = !this.progressive || (ss === 0 && ah === 0);
      const needsAc = !this.progressive || ss > 0;
      if (needsDc && !c.dcTable) throw new JpegError(`component ${c.id}: scan uses an undefined DC Huffman table`);
      if (needsAc && !c.acTable) throw new JpegError(`component ${c.id}: scan uses an undefined AC Huffman table`);
    }
    this.scans++;
    this.offset = new ScanDecoder(this.bytes, this.offset, this, scanComponents, ss, se, ah, al).run(this.scans);
  }

  /** Geometry the scan decoder needs. */
  get frame() {
    return { progressive: this.progressive, mcusPerLine: this.mcusPerLine, mcusPerColumn: this.mcusPerColumn, restartInterval: this.restartInterval };
  }

  private output(): JpegPixels {
    const { width, height } = this;
    const planes = this.components.map((c) => {
      if (!c.quant) throw new JpegError(`component ${c.id} has no scan data`);
      return idctComponent(c);
    });
    // Each component's own sample grid, then upsampled to full size exactly as libjpeg's fancy upsampling does.
    const full = this.components.map((c, i) => {
      const compWidth = Math.ceil((width * c.h) / this.maxH), compHeight = Math.ceil((height * c.v) / this.maxV);
      return upsample(planes[i], c.blocksPerLine * 8, compWidth, compHeight, this.maxH / c.h, this.maxV / c.v, width, height, c);
    });
    const n = width * height;
    const count = this.components.length;
    let colorSpace: "gray" | "ycc" | "rgb" | "cmyk" | "ycck";
    if (count === 1) colorSpace = "gray";
    else if (count === 3) {
      if (this.sawJfif) colorSpace = "ycc";
      else if (this.adobeTransform >= 0) colorSpace = this.adobeTransform === 0 ? "rgb" : "ycc";
      else {
        const ids = this.components.map((c) => c.id);
        colorSpace = ids[0] === 82 && ids[1] === 71 && ids[2] === 66 ? "rgb" : "ycc"; // 'R','G','B' ids mean no transform
      }
    } else colorSpace = this.adobeTransform > 0 ? "ycck" : "cmyk"; // libjpeg: Adobe transform 0 = CMYK, others YCCK

    if (colorSpace === "gray") return { width, height, channels: 1, data: full[0], exifOrientation: this.exifOrientation };
    const rgb = new Uint8Array(n * 3);
    if (colorSpace === "rgb") {
      for (let i = 0; i < n; i++) {
        rgb[3 * i] = full[0][i];
        rgb[3 * i + 1] = full[1][i];
        rgb[3 * i + 2] = full[2][i];
      }
    } else if (colorSpace === "ycc") {
      const [y, cb, cr] = full;
      for (let i = 0; i < n; i++) {
        const Y = y[i], Cb = cb[i], Cr = cr[i];
        rgb[3 * i] = clamp255(Y + CR_R[Cr]);
        rgb[3 * i + 1] = clamp255(Y + ((CB_G[Cb] + CR_G[Cr]) >> 16));
        rgb[3 * i + 2] = clamp255(Y + CB_B[Cb]);
      }
    } else {
      // libjpeg outputs CMYK (YCCK converted first); Pillow always reads it as inverted ("CMYK;I", Adobe's convention), then cmyk2rgb.
      for (let i = 0; i < n; i++) {
        let c = full[0][i], m = full[1][i], yy = full[2][i];
        const k = full[3][i];
        if (colorSpace === "ycck") {
          const Y = c, Cb = m, Cr = yy;
          c = clamp255(255 - (Y + CR_R[Cr]));
          m = clamp255(255 - (Y + ((CB_G[Cb] + CR_G[Cr]) >> 16)));
          yy = clamp255(255 - (Y + CB_B[Cb]));
        }
        const cmyk = [255 - c, 255 - m, 255 - yy, 255 - k];
        const nk = 255 - cmyk[3];
        for (let ch = 0; ch < 3; ch++) rgb[3 * i + ch] = clamp255(nk - mulDiv255(cmyk[ch], nk));
      }
    }
    return { width, height, channels: 3, data: rgb, exifOrientation: this.exifOrientation };
  }
}

const hex = (v: number) => v.toString(16).toUpperCase().padStart(2, "0");
const clamp255 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);
// Pillow's MULDIV255: a*b/255 rounded, in integers.
const mulDiv255 = (a: number, b: number) => {
  const t = a * b + 128;
  return ((t >> 8) + t) >> 8;
};

// jdcolor.c build_ycc_rgb_table: 16-bit fixed point, FIX(x) = round(x * 65536).
const CR_R = new Int32Array(256), CB_B = new Int32Array(256), CR_G = new Int32Array(256), CB_G = new Int32Array(256);
{
  const fix = (x: number) => Math.floor(x * 65536 + 0.5);
  const half = 1 << 15;
  for (let i = 0; i < 256; i++) {
    const x = i - 128;
    CR_R[i] = (fix(1.402) * x + half) >> 16;
    CB_B[i] = (fix(1.772) * x + half) >> 16;
    CR_G[i] = -fix(0.71414) * x;
    CB_G[i] = -fix(0.34414) * x + half;
  }
}

// Lookup over the next 16 bits of the stream: entry = (codeLength << 8) | symbol, 0 = no such code.
function buildHuffmanLookup(counts: Uint8Array, symbols: Uint8Array): Uint16Array {
  const lookup = new Uint16Array(65536);
  let code = 0, k = 0;
  for (let length = 1; length <= 16; length++) {
    for (let i = 0; i < counts[length - 1]; i++) {
      if (code >= 1 << length) throw new JpegError("invalid Huffman table (more codes than its lengths allow)");
      const first = code << (16 - length), last = (code + 1) << (16 - length);
      lookup.fill((length << 8) | symbols[k++], first, last);
      code++;
    }
    code <<= 1;
  }
  return lookup;
}

/** Entropy decoding of one scan; returns the byte offset where the scan's data ends (at the next marker). */
class ScanDecoder {
  private pos: number;
  private bitBuffer = 0;
  private bitCount = 0;
  private paddedBits = 0; // zero bits appended past the data (at a marker or the end of the file)
  private markerReached = false;
  private eobrun = 0;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly decoder: JpegDecoder,
    private readonly components: Component[],
    private readonly ss: number,
    private readonly se: number,
    private readonly ah: number,
    private readonly al: number,
  ) {
    this.pos = start;
  }

  run(scanNumber: number): number {
    const { progressive, mcusPerLine, mcusPerColumn, restartInterval } = this.decoder.frame;
    const single = this.components.length === 1;
    const c0 = this.components[0];
    const totalMcus = single ? c0.blocksPerLine * c0.blocksPerColumn : mcusPerLine * mcusPerColumn;
    for (const c of this.components) c.predictor = 0;
    const where = (mcu: number) => `scan ${scanNumber}, MCU ${mcu} of ${totalMcus}`;
    let expectedRst = 0;
    for (let mcu = 0; mcu < totalMcus; mcu++) {
      if (restartInterval && mcu > 0 && mcu % restartInterval === 0) {
        this.restart(expectedRst, where(mcu));
        expectedRst = (expectedRst + 1) & 7;
      }
      try {
        if (single) {
          const row = Math.floor(mcu / c0.blocksPerLine), col = mcu % c0.blocksPerLine;
          this.decodeBlock(c0, (row * c0.blocksPerLineAlloc + col) * 64, progressive);
        } else {
          const mcuRow = Math.floor(mcu / mcusPerLine), mcuCol = mcu % mcusPerLine;
          for (const c of this.components) {
            for (let v = 0; v < c.v; v++) {
              for (let h = 0; h < c.h; h++) {
                const row = mcuRow * c.v + v, col = mcuCol * c.h + h;
                this.decodeBlock(c, (row * c.blocksPerLineAlloc + col) * 64, progressive);
              }
            }
          }
        }
      } catch (e) {
        if (e instanceof JpegError && this.paddedBits > 0) throw this.endedEarly(where(mcu));
        if (e instanceof JpegError) throw new JpegError(`${e.message} (${where(mcu)})`);
        throw e;
      }
      if (this.paddedBits > this.bitCount) throw this.endedEarly(where(mcu));
    }
    return this.pos;
  }

  private endedEarly(where: string): JpegError {
    return this.pos >= this.bytes.length
      ? new JpegError(`truncated: the file ends inside the image data (${where})`)
      : new JpegError(`corrupt data: the scan ends early at a marker (${where})`);
  }

  // Restart marker: drop the remaining (padding) bits, check RSTn, reset predictors and the EOB run.
  private restart(expected: number, where: string): void {
    this.bitBuffer = 0;
    this.bitCount = 0;
    this.paddedBits = 0;
    this.markerReached = false;
    const b = this.bytes;
    let o = this.pos;
    while (o + 1 < b.length && !(b[o] === 0xff && b[o + 1] >= 0xd0 && b[o + 1] <= 0xd7)) {
      if (b[o] === 0xff && b[o + 1] !== 0 && b[o + 1] !== 0xff) throw new JpegError(`corrupt data: expected restart marker RST${expected}, found marker 0xFF${hex(b[o + 1])} (${where})`);
      o++;
    }
    if (o + 1 >= b.length) throw new JpegError(`truncated: the file ends before restart marker RST${expected} (${where})`);
    this.pos = o + 2;
    for (const c of this.components) c.predictor = 0;
    this.eobrun = 0;
  }

  private fill(): void {
    const b = this.bytes;
    while (this.bitCount <= 23) {
      let byte = 0;
      if (this.markerReached || this.pos >= b.length) {
        this.paddedBits += 8;
      } else if (b[this.pos] === 0xff) {
        const next = b[this.pos + 1];
        if (next === 0) {
          byte = 0xff;
          this.pos += 2;
        } else {
          this.markerReached = true; // stay on the marker; the caller finds it
          this.paddedBits += 8;
        }
      } else {
        byte = b[this.pos++];
      }
      this.bitBuffer = ((this.bitBuffer << 8) | byte) >>> 0;
      this.bitCount += 8;
    }
  }

  private bits(n: number): number {
    if (n === 0) return 0;
    if (this.bitCount < n) this.fill();
    this.bitCount -= n;
    const value = (this.bitBuffer >>> this.bitCount) & ((1 << n) - 1);
    this.bitBuffer &= (1 << this.bitCount) - 1;
    return value;
  }

  private huffman(table: Uint16Array): number {
    if (this.bitCount < 16) this.fill();
    const entry = table[(this.bitBuffer >>> (this.bitCount - 16)) & 0xffff];
    if (entry === 0) throw new JpegError("corrupt data: invalid Huffman code");
    this.bitCount -= entry >> 8;
    this.bitBuffer &= (1 << this.bitCount) - 1;
    return entry & 0xff;
  }

  // Reads an s-bit magnitude and sign-extends it (T.81 F.2.2.1 EXTEND).
  private receiveExtend(s: number): number {
    if (s === 0) return 0;
    if (s > 16) throw new JpegError(`corrupt data: coefficient size ${s} bits`);
    const v = this.bits(s);
    return v < 1 << (s - 1) ? v - (1 << s) + 1 : v;
  }

  private decodeBlock(c: Component, offset: number, progressive: boolean): void {
    const coefs = c.coefs;
    if (!progressive) {
      const t = this.huffman(c.dcTable!);
      c.predictor += this.receiveExtend(t);
      coefs[offset] = c.predictor;
      const ac = c.acTable!;
      for (let k = 1; k < 64; ) {
        const rs = this.huffman(ac);
        const r = rs >> 4, s = rs & 15;
        if (s === 0) {
          if (r !== 15) break;
          k += 16;
          continue;
        }
        k += r;
        if (k > 63) throw new JpegError("corrupt data: AC coefficient index past 63");
        coefs[offset + NATURAL_ORDER[k]] = this.receiveExtend(s);
        k++;
      }
      return;
    }
    const { ss, se, ah, al } = this;
    if (ss === 0) {
      if (ah === 0) {
        c.predictor += this.receiveExtend(this.huffman(c.dcTable!));
        coefs[offset] = c.predictor * (1 << al);
      } else if (this.bits(1)) {
        coefs[offset] |= 1 << al;
      }
      return;
    }
    if (ah === 0) {
      // AC first pass (T.81 G.1.2.2)
      if (this.eobrun > 0) {
        this.eobrun--;
        return;
      }
      const ac = c.acTable!;
      for (let k = ss; k <= se; ) {
        const rs = this.huffman(ac);
        const r = rs >> 4, s = rs & 15;
        if (s === 0) {
          if (r < 15) {
            this.eobrun = (1 << r) - 1 + this.bits(r);
            break;
          }
          k += 16;
          continue;
        }
        k += r;
        if (k > 63) throw new JpegError("corrupt data: AC coefficient index past 63");
        coefs[offset + NATURAL_ORDER[k]] = this.receiveExtend(s) * (1 << al);
        k++;
      }
      return;
    }
    // AC refinement (libjpeg jdphuff.c decode_mcu_AC_refine)
    const p1 = 1 << al, m1 = -1 << al;
    let k = ss;
    if (this.eobrun === 0) {
      const ac = c.acTable!;
      for (; k <= se; k++) {
        const rs = this.huffman(ac);
        let r = rs >> 4, s = rs & 15;
        if (s) {
          s = this.bits(1) ? p1 : m1;
        } else if (r !== 15) {
          this.eobrun = (1 << r) + this.bits(r);
          break;
        }
        do {
          const index = offset + NATURAL_ORDER[k];
          const coef = coefs[index];
          if (coef !== 0) {
            if (this.bits(1) && (coef & p1) === 0) coefs[index] = coef >= 0 ? coef + p1 : coef + m1;
          } else if (--r < 0) {
            break;
          }
          k++;
        } while (k <= se);
        if (s) {
          if (k > 63) throw new JpegError("corrupt data: AC coefficient index past 63");
          coefs[offset + NATURAL_ORDER[k]] = s;
        }
      }
    }
    if (this.eobrun > 0) {
      for (; k <= se; k++) {
        const index = offset + NATURAL_ORDER[k];
        const coef = coefs[index];
        if (coef !== 0 && this.bits(1) && (coef & p1) === 0) coefs[index] = coef >= 0 ? coef + p1 : coef + m1;
      }
      this.eobrun--;
    }
  }
}

// libjpeg's post-IDCT range limit: index (value & 1023) with value centred on 0 -> sample.
// 0..127 -> 128..255, 128..511 -> 255, 512..895 -> 0, 896..1023 (i.e. -128..-1) -> 0..127.
const IDCT_RANGE = new Uint8Array(1024);
for (let i = 0; i < 1024; i++) IDCT_RANGE[i] = i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896;

// jidctint.c constants, CONST_BITS = 13.
const FIX_0_298631336 = 2446, FIX_0_390180644 = 3196, FIX_0_541196100 = 4433, FIX_0_765366865 = 6270;
const FIX_0_899976223 = 7373, FIX_1_175875602 = 9633, FIX_1_501321110 = 12299, FIX_1_847759065 = 15137;
const FIX_1_961570560 = 16069, FIX_2_053119869 = 16819, FIX_2_562915447 = 20995, FIX_3_072711026 = 25172;

// Arithmetic right shift with rounding, exact for any integer held in a double (libjpeg's DESCALE on 64-bit JLONG).
const descale = (x: number, n: number) => {
  const v = x + (1 << (n - 1));
  return (v | 0) === v ? v >> n : Math.floor(v / 2 ** n); // int32 shift when it fits (always, for valid data)
};

/** Inverse DCT of every block of a component into a sample plane of blocksPerLine*8 x blocksPerColumn*8. */
function idctComponent(c: Component): Uint8Array {
  const stride = c.blocksPerLine * 8;
  const plane = new Uint8Array(stride * c.blocksPerColumn * 8);
  const ws = new Float64Array(64);
  const q = c.quant!;
  for (let by = 0; by < c.blocksPerColumn; by++) {
    for (let bx = 0; bx < c.blocksPerLine; bx++) {
      idctIslow(c.coefs, (by * c.blocksPerLineAlloc + bx) * 64, q, ws, plane, by * 8 * stride + bx * 8, stride);
    }
  }
  return plane;
}

// jpeg_idct_islow: integer 8x8 IDCT (Loeffler-Ligtenberg-Moschytz), pass 1 on columns, pass 2 on rows.
function idctIslow(coefs: Int16Array, o: number, q: Int32Array, ws: Float64Array, out: Uint8Array, outOffset: number, stride: number): void {
  for (let col = 0; col < 8; col++) {
    const i = o + col;
    if (coefs[i + 8] === 0 && coefs[i + 16] === 0 && coefs[i + 24] === 0 && coefs[i + 32] === 0 && coefs[i + 40] === 0 && coefs[i + 48] === 0 && coefs[i + 56] === 0) {
      const dc = coefs[i] * q[col] * 4; // << PASS1_BITS
      for (let r = 0; r < 8; r++) ws[r * 8 + col] = dc;
      continue;
    }
    let z2 = coefs[i + 16] * q[col + 16];
    let z3 = coefs[i + 48] * q[col + 48];
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 + z3 * -FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;
    z2 = coefs[i] * q[col];
    z3 = coefs[i + 32] * q[col + 32];
    let tmp0 = (z2 + z3) * 8192;
    let tmp1 = (z2 - z3) * 8192;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    tmp0 = coefs[i + 56] * q[col + 56];
    tmp1 = coefs[i + 40] * q[col + 40];
    tmp2 = coefs[i + 24] * q[col + 24];
    tmp3 = coefs[i + 8] * q[col + 8];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * FIX_1_175875602;
    tmp0 *= FIX_0_298631336;
    tmp1 *= FIX_2_053119869;
    tmp2 *= FIX_3_072711026;
    tmp3 *= FIX_1_501321110;
    z1 *= -FIX_0_899976223;
    z2 *= -FIX_2_562915447;
    z3 *= -FIX_1_961570560;
    z4 *= -FIX_0_390180644;
    z3 += z5;
    z4 += z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    // DESCALE(x, CONST_BITS - PASS1_BITS); libjpeg stores these as int
    ws[col] = descale(tmp10 + tmp3, 11) | 0;
    ws[56 + col] = descale(tmp10 - tmp3, 11) | 0;
    ws[8 + col] = descale(tmp11 + tmp2, 11) | 0;
    ws[48 + col] = descale(tmp11 - tmp2, 11) | 0;
    ws[16 + col] = descale(tmp12 + tmp1, 11) | 0;
    ws[40 + col] = descale(tmp12 - tmp1, 11) | 0;
    ws[24 + col] = descale(tmp13 + tmp0, 11) | 0;
    ws[32 + col] = descale(tmp13 - tmp0, 11) | 0;
  }
  for (let row = 0; row < 8; row++) {
    const w = row * 8;
    const p = outOffset + row * stride;
    if (ws[w + 1] === 0 && ws[w + 2] === 0 && ws[w + 3] === 0 && ws[w + 4] === 0 && ws[w + 5] === 0 && ws[w + 6] === 0 && ws[w + 7] === 0) {
      const v = IDCT_RANGE[descale(ws[w], 5) & 1023]; // DESCALE(x, PASS1_BITS + 3)
      for (let k = 0; k < 8; k++) out[p + k] = v;
      continue;
    }
    let z2 = ws[w + 2], z3 = ws[w + 6];
    let z1 = (z2 + z3) * FIX_0_541196100;
    let tmp2 = z1 + z3 * -FIX_1_847759065;
    let tmp3 = z1 + z2 * FIX_0_765366865;
    let tmp0 = (ws[w] + ws[w + 4]) * 8192;
    let tmp1 = (ws[w] - ws[w + 4]) * 8192;
    const tmp10 = tmp0 + tmp3, tmp13 = tmp0 - tmp3, tmp11 = tmp1 + tmp2, tmp12 = tmp1 - tmp2;
    tmp0 = ws[w + 7];
    tmp1 = ws[w + 5];
    tmp2 = ws[w + 3];
    tmp3 = ws[w + 1];
    z1 = tmp0 + tmp3;
    z2 = tmp1 + tmp2;
    z3 = tmp0 + tmp2;
    let z4 = tmp1 + tmp3;
    const z5 = (z3 + z4) * FIX_1_175875602;
    tmp0 *= FIX_0_298631336;
    tmp1 *= FIX_2_053119869;
    tmp2 *= FIX_3_072711026;
    tmp3 *= FIX_1_501321110;
    z1 *= -FIX_0_899976223;
    z2 *= -FIX_2_562915447;
    z3 *= -FIX_1_961570560;
    z4 *= -FIX_0_390180644;
    z3 += z5;
    z4 += z5;
    tmp0 += z1 + z3;
    tmp1 += z2 + z4;
    tmp2 += z2 + z3;
    tmp3 += z1 + z4;
    // DESCALE(x, CONST_BITS + PASS1_BITS + 3)
    out[p] = IDCT_RANGE[descale(tmp10 + tmp3, 18) & 1023];
    out[p + 7] = IDCT_RANGE[descale(tmp10 - tmp3, 18) & 1023];
    out[p + 1] = IDCT_RANGE[descale(tmp11 + tmp2, 18) & 1023];
    out[p + 6] = IDCT_RANGE[descale(tmp11 - tmp2, 18) & 1023];
    out[p + 2] = IDCT_RANGE[descale(tmp12 + tmp1, 18) & 1023];
    out[p + 5] = IDCT_RANGE[descale(tmp12 - tmp1, 18) & 1023];
    out[p + 3] = IDCT_RANGE[descale(tmp13 + tmp0, 18) & 1023];
    out[p + 4] = IDCT_RANGE[descale(tmp13 - tmp0, 18) & 1023];
  }
}

/**
 * Upsamples a component plane (compWidth x compHeight valid samples, row stride `stride`) by integer factors to
 * width x height. 2x horizontal and/or 2x vertical use libjpeg's "fancy" triangle filter (jdsample.c:
 * h2v1_fancy_upsample, h2v2_fancy_upsample, h1v2_fancy_upsample) with edge samples repeated; other factors replicate.
 */
function upsample(plane: Uint8Array, stride: number, compWidth: number, compHeight: number, fh: number, fv: number, width: number, height: number, c: Component): Uint8Array {
  const out = new Uint8Array(width * height);
  if (!Number.isInteger(fh) || !Number.isInteger(fv)) throw new JpegError(`component ${c.id}: fractional sampling ratio is not supported`);
  const at = (x: number, y: number) => plane[(y < 0 ? 0 : y >= compHeight ? compHeight - 1 : y) * stride + (x < 0 ? 0 : x >= compWidth ? compWidth - 1 : x)];
  if (fh === 1 && fv === 1) {
    for (let y = 0; y < height; y++) out.set(plane.subarray(y * stride, y * stride + width), y * width);
  } else if (fh === 2 && fv === 1 && compWidth > 2) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const sx = x >> 1;
        // even output: 3/4 this + 1/4 left, rounding +1; odd output: 3/4 this + 1/4 right, rounding +2
        out[y * width + x] = x & 1 ? (3 * at(sx, y) + at(sx + 1, y) + 2) >> 2 : (3 * at(sx, y) + at(sx - 1, y) + 1) >> 2;
      }
    }
  } else if (fh === 2 && fv === 2 && compWidth > 2) {
    const colSums = new Int32Array(compWidth + 2); // 3 * nearer row + next nearer row, edge columns repeated
    for (let y = 0; y < height; y++) {
      const sy = y >> 1, ny = y & 1 ? sy + 1 : sy - 1; // nearer row, then the next nearer one (below for odd rows)
      const near = Math.min(sy, compHeight - 1) * stride, far = Math.min(Math.max(ny, 0), compHeight - 1) * stride;
      for (let x = 0; x < compWidth; x++) colSums[x + 1] = 3 * plane[near + x] + plane[far + x];
      colSums[0] = colSums[1];
      colSums[compWidth + 1] = colSums[compWidth];
      const row = y * width;
      for (let x = 0; x < width; x++) {
        const sx = (x >> 1) + 1;
        out[row + x] = x & 1 ? (3 * colSums[sx] + colSums[sx + 1] + 7) >> 4 : (3 * colSums[sx] + colSums[sx - 1] + 8) >> 4;
      }
    }
  } else if (fh === 1 && fv === 2) {
    for (let y = 0; y < height; y++) {
      const sy = y >> 1, odd = y & 1;
      const ny = odd ? sy + 1 : sy - 1;
      for (let x = 0; x < width; x++) out[y * width + x] = (3 * at(x, sy) + at(x, ny) + (odd ? 2 : 1)) >> 2;
    }
  } else {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) out[y * width + x] = at(Math.floor(x / fh), Math.floor(y / fv));
    }
  }
  return out;
}
