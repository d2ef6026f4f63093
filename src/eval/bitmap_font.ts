// A 5x7 pixel font for printable ASCII (32..126) and an RGB canvas to draw rectangles and text on, enough to label
// report images without a font file or a graphics library. Other characters are drawn as '?'.

/** Glyph cell: 5 columns x 7 rows, then one blank column between characters. */
export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;
export const GLYPH_ADVANCE = GLYPH_WIDTH + 1;

// Per character, 5 columns left to right as two hex digits each; bit 0 of a column is the top row (the layout of
// the classic HD44780-style 5x7 LCD fonts). One line holds 8 characters, starting at ' '.
const FONT_COLUMNS = [
  "0000000000 00005f0000 0007000700 147f147f14 242a7f2a12 2313086462 3649552250 0005030000", //  !"#$%&'
  "001c224100 0041221c00 14083e0814 08083e0808 0050300000 0808080808 0060600000 2010080402", // ()*+,-./
  "3e5149453e 00427f4000 4261514946 2141454b31 1814127f10 2745454539 3c4a494930 0171090503", // 01234567
  "3649494936 064949291e 0036360000 0056360000 0814224100 1414141414 0041221408 0201510906", // 89:;<=>?
  "324979413e 7e1111117e 7f49494936 3e41414122 7f4141221c 7f49494941 7f09090901 3e4149497a", // @ABCDEFG
  "7f0808087f 00417f4100 2040413f01 7f08142241 7f40404040 7f020c027f 7f0408107f 3e4141413e", // HIJKLMNO
  "7f09090906 3e4151215e 7f09192946 4649494931 01017f0101 3f4040403f 1f2040201f 3f4038403f", // PQRSTUVW
  "6314081463 0708700807 6151494543 007f414100 0204081020 0041417f00 0402010204 4040404040", // XYZ[\]^_
  "0001020400 2054545478 7f48444438 3844444420 384444487f 3854545418 087e090102 0c5252523e", // `abcdefg
  "7f08040478 00447d4000 2040443d00 007f102844 00417f4000 7c04180478 7c08040478 3844444438", // hijklmno
  "7c14141408 081414187c 7c08040408 4854545420 043f444020 3c4040207c 1c2040201c 3c4030403c", // pqrstuvw
  "4428102844 0c5050503c 4464544c44 0008364100 00007f0000 0041360800 0201020402", //            xyz{|}~
].join(" ").split(" ");

/** The 7 rows of a character's glyph, top first; bit 4 of a row is its leftmost pixel. Unknown characters give '?'. */
export function glyphRows(char: string): number[] {
  const code = char.codePointAt(0) ?? 0;
  const columns = FONT_COLUMNS[code >= 32 && code <= 126 ? code - 32 : "?".charCodeAt(0) - 32];
  const rows = new Array<number>(GLYPH_HEIGHT).fill(0);
  for (let c = 0; c < GLYPH_WIDTH; c++) {
    const bits = parseInt(columns.slice(2 * c, 2 * c + 2), 16);
    for (let r = 0; r < GLYPH_HEIGHT; r++) if ((bits >> r) & 1) rows[r] |= 1 << (GLYPH_WIDTH - 1 - c);
  }
  return rows;
}

/** Width in pixels of text drawn at `scale` (no trailing gap). */
export function textWidth(text: string, scale: number): number {
  const n = [...text].length;
  return n === 0 ? 0 : (n * GLYPH_ADVANCE - 1) * scale;
}

/** `text` cut to at most `maxChars` characters, ending in ".." when cut. */
export function truncateText(text: string, maxChars: number): string {
  const chars = [...text];
  return chars.length <= maxChars ? text : chars.slice(0, Math.max(0, maxChars - 2)).join("") + "..";
}

export type Rgb = readonly [number, number, number];

/** Row-major 8-bit RGB pixels; drawing outside the canvas is clipped. */
export class RgbCanvas {
  readonly data: Uint8Array;

  constructor(readonly width: number, readonly height: number, background: Rgb = [255, 255, 255]) {
    this.data = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  pixel(x: number, y: number): [number, number, number] {
    const o = (y * this.width + x) * 3;
    return [this.data[o], this.data[o + 1], this.data[o + 2]];
  }

  fillRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    const x0 = Math.max(0, Math.floor(x)), x1 = Math.min(this.width, Math.floor(x + w));
    const y0 = Math.max(0, Math.floor(y)), y1 = Math.min(this.height, Math.floor(y + h));
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const o = (yy * this.width + xx) * 3;
        this.data[o] = color[0];
        this.data[o + 1] = color[1];
        this.data[o + 2] = color[2];
      }
    }
  }

  /**
   * Draws text with its top-left corner at (x, y), each font pixel a scale x scale square. `vertical` turns it 90°
   * counter-clockwise (read bottom to top, as matplotlib's rotation=90): it then fills a box GLYPH_HEIGHT*scale wide
   * and textWidth(text, scale) tall whose top-left is (x, y), the text's end at the top.
   */
  drawText(text: string, x: number, y: number, scale: number, color: Rgb, vertical = false): void {
    const length = textWidth(text, scale);
    [...text].forEach((char, i) => {
      const rows = glyphRows(char);
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let c = 0; c < GLYPH_WIDTH; c++) {
          if (!((rows[r] >> (GLYPH_WIDTH - 1 - c)) & 1)) continue;
          const along = (i * GLYPH_ADVANCE + c) * scale, across = r * scale;
          if (vertical) this.fillRect(x + across, y + length - along - scale, scale, scale, color);
          else this.fillRect(x + along, y + across, scale, scale, color);
        }
      }
    });
  }
}
