// Still-image formats other than PNG and JPEG, decoded by small npm libraries that need nothing native (pure JS,
// or WebAssembly that ships in the package): GIF (omggif; the first frame of an animation, as Image.open gives),
// BMP (bmp-ts), WebP (@cwasm/webp, libwebp compiled to WebAssembly, synchronous like our own decoders) and TIFF
// (utif2; the first page). Formats are told apart by their first bytes, never by the file name.
import { GifReader } from "omggif";
import { decode as decodeBmpFile } from "bmp-ts";
import { decode as decodeWebpFile } from "@cwasm/webp";
import UTIF from "utif2";
import { isJpeg } from "./jpeg.js";
import { isPng } from "./png.js";

export type StillFormat = "png" | "jpeg" | "gif" | "bmp" | "webp" | "tiff";

const ascii = (bytes: Uint8Array, at: number, text: string) => [...text].every((c, i) => bytes[at + i] === c.charCodeAt(0));

/** The still-image format of a file's first bytes (16 are enough), or null. */
export function stillFormatOf(bytes: Uint8Array): StillFormat | null {
  if (isPng(bytes)) return "png";
  if (isJpeg(bytes)) return "jpeg";
  if (ascii(bytes, 0, "GIF87a") || ascii(bytes, 0, "GIF89a")) return "gif";
  if (ascii(bytes, 0, "RIFF") && ascii(bytes, 8, "WEBP")) return "webp";
  if (ascii(bytes, 0, "II*\0") || ascii(bytes, 0, "MM\0*")) return "tiff";
  // "BM" alone is two common letters: also ask for the header sizes every BMP has
  if (ascii(bytes, 0, "BM") && bytes.length >= 18 && [12, 40, 52, 56, 64, 108, 124].includes(bytes[14] | (bytes[15] << 8))) return "bmp";
  return null;
}

/** True for the first bytes of the common video containers (MP4/MOV, Matroska/WebM, AVI, MPEG, Ogg, FLV). */
export function looksLikeVideo(bytes: Uint8Array): boolean {
  return ascii(bytes, 4, "ftyp") || (bytes[0] === 0x1a && bytes[1] === 0x45 && bytes[2] === 0xdf && bytes[3] === 0xa3) ||
    (ascii(bytes, 0, "RIFF") && ascii(bytes, 8, "AVI ")) || (bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 1 && (bytes[3] === 0xba || bytes[3] === 0xb3)) ||
    ascii(bytes, 0, "OggS") || ascii(bytes, 0, "FLV");
}

export interface RgbaImage {
  width: number;
  height: number;
  /** 4 bytes per pixel: R, G, B, A. */
  data: Uint8Array;
}

/** The frames of a GIF file (1 for a still GIF). */
export function gifFrameCount(bytes: Uint8Array): number {
  return new GifReader(bytes).numFrames();
}

/** The first frame of a GIF, on its logical screen. */
export function decodeGif(bytes: Uint8Array): RgbaImage {
  const reader = new GifReader(bytes);
  if (reader.numFrames() === 0) throw new Error("the GIF has no frames");
  const frame = reader.frameInfo(0);
  const data = new Uint8Array(reader.width * reader.height * 4);
  // transparent pixels are left untouched by the blit: Pillow's convert("RGB") shows them in the palette colour of
  // the transparent index, so start from that colour
  if (frame.transparent_index !== null && frame.palette_offset !== null) {
    const at = frame.palette_offset + frame.transparent_index * 3;
    for (let i = 0; i < data.length; i += 4) (data[i] = bytes[at]), (data[i + 1] = bytes[at + 1]), (data[i + 2] = bytes[at + 2]);
  }
  reader.decodeAndBlitFrameRGBA(0, data);
  return { width: reader.width, height: reader.height, data };
}

/** A BMP (1, 4, 8, 16, 24, 32 bits, RLE, bit fields, bottom-up or top-down). */
export function decodeBmp(bytes: Uint8Array): RgbaImage {
  // bmp-ts's default layout is A, B, G, R per pixel (its RGBA option mishandles 1-bit images)
  const bmp = decodeBmpFile(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  const n = bmp.width * bmp.height;
  if (!(n > 0) || bmp.data.length < n * 4) throw new Error(`the BMP header says ${bmp.width}x${bmp.height} but the pixel data is short`);
  const data = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    data[4 * i] = bmp.data[4 * i + 3];
    data[4 * i + 1] = bmp.data[4 * i + 2];
    data[4 * i + 2] = bmp.data[4 * i + 1];
    data[4 * i + 3] = 255;
  }
  return { width: bmp.width, height: bmp.height, data };
}

/** A still WebP (lossy, lossless, with or without alpha); an animated WebP is refused by libwebp's simple decoder. */
export function decodeWebp(bytes: Uint8Array): RgbaImage {
  const image = decodeWebpFile(bytes);
  return { width: image.width, height: image.height, data: new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength) };
}

/** The first page of a TIFF. */
export function decodeTiff(bytes: Uint8Array): RgbaImage {
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  const pages = UTIF.decode(buffer);
  if (pages.length === 0) throw new Error("the TIFF has no image");
  UTIF.decodeImage(buffer, pages[0]);
  const { width, height } = pages[0];
  if (!(width > 0 && height > 0)) throw new Error("the TIFF's first page has no pixels");
  return { width, height, data: UTIF.toRGBA8(pages[0]) };
}
