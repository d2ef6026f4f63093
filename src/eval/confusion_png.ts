// The confusion matrix as a heatmap PNG, laid out like scikit-learn's ConfusionMatrixDisplay: rows are true labels,
// columns predicted labels, the count in each cell, a colour bar on the right.
//
// Shading is normalised by row: a cell's colour is its count over its row's total (the fraction of that true class
// predicted as the column's class, so the diagonal shows each class's recall), white (0) to dark blue (1) on
// matplotlib's "Blues" colours. Unlike shading by raw counts, rare classes stay as readable as common ones; the
// printed numbers are the raw counts. A row with no samples is white.
import { encodePng } from "../data/png.js";
import { GLYPH_HEIGHT, RgbCanvas, textWidth, truncateText, type Rgb } from "./bitmap_font.js";

const PAD = 12;
const TEXT_SCALE = 2; // axis titles and colour bar labels
const TITLE_HEIGHT = GLYPH_HEIGHT * TEXT_SCALE;
const TITLE_GAP = 10;
const TICK_GAP = 6;
// The grid aims at about GRID_TARGET pixels: few classes get MAX_CELL cells, 100 classes 12-pixel ones.
const GRID_TARGET = 1200;
const MAX_CELL = 64;
const MIN_CELL = 2;
/** Class names longer than this are cut, ending in "..". */
export const MAX_LABEL_CHARS = 20;
const COLORBAR_GAP = 20;
const COLORBAR_WIDTH = 16;
const COLORBAR_LABELS = ["100%", "50%", "0%"];

const TRUE_TITLE = "True label";
const PREDICTED_TITLE = "Predicted label";
const INK: Rgb = [0, 0, 0];
const FRAME: Rgb = [128, 128, 128];

// matplotlib's "Blues" colour map (ColorBrewer's 9 steps), from 0 to 1.
const BLUES: Rgb[] = [
  [247, 251, 255], [222, 235, 247], [198, 219, 239], [158, 202, 225], [107, 174, 214],
  [66, 146, 198], [33, 113, 181], [8, 81, 156], [8, 48, 107],
];

/** Colour of a fraction in [0, 1], linearly between the Blues steps. */
export function blues(fraction: number): Rgb {
  const t = Math.min(1, Math.max(0, fraction)) * (BLUES.length - 1);
  const i = Math.min(BLUES.length - 2, Math.floor(t)), f = t - i;
  const [a, b] = [BLUES[i], BLUES[i + 1]];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)) as unknown as Rgb;
}

export interface ConfusionLayout {
  classes: number;
  /** Side of a cell in pixels. */
  cell: number;
  /** Top-left corner of the grid of cells. */
  gridX: number;
  gridY: number;
  width: number;
  height: number;
  /** Scale of the class names (1 or 2), 0 when the cells are too small for them. */
  labelScale: number;
  /** Scale of the counts printed in the cells, 0 when they would not fit. */
  countScale: number;
  /** Class names as drawn (truncated). */
  labels: string[];
  /** Longest drawn class name in pixels (0 when none are drawn). */
  labelExtent: number;
  /** Top-left corners of the axis titles (the true-label one is vertical). */
  trueTitle: { x: number; y: number };
  predictedTitle: { x: number; y: number };
  colorbarX: number;
}

function checkMatrix(matrix: number[][], labels: string[]): void {
  const fail = (what: string): never => {
    throw new Error(`confusion matrix image: ${what}`);
  };
  if (matrix.length === 0) fail("the matrix has no classes (nothing was evaluated?)");
  if (labels.length !== matrix.length) fail(`${labels.length} class names for a ${matrix.length}-class matrix`);
  matrix.forEach((row, i) => {
    if (row.length !== matrix.length) fail(`row ${i} (${labels[i]}) has ${row.length} counts, expected ${matrix.length}`);
    row.forEach((v, j) => {
      if (!Number.isInteger(v) || v < 0) fail(`count [${i}][${j}] = ${v} is not a non-negative integer`);
    });
  });
}

/** Sizes and positions of the picture's parts; throws on an empty or malformed matrix. */
export function confusionLayout(matrix: number[][], labels: string[]): ConfusionLayout {
  checkMatrix(matrix, labels);
  const n = matrix.length;
  const cell = Math.max(MIN_CELL, Math.min(MAX_CELL, Math.floor(GRID_TARGET / n)));
  const grid = n * cell;
  const labelScale = cell >= 16 ? 2 : cell >= 8 ? 1 : 0;
  const shown = labels.map((l) => truncateText(l, MAX_LABEL_CHARS));
  // reduce, not Math.max(...): a spread of 10^5 cells overflows the stack
  const labelExtent = labelScale ? shown.reduce((m, l) => Math.max(m, textWidth(l, labelScale)), 0) : 0;
  const widest = String(matrix.reduce((m, row) => row.reduce((a, b) => Math.max(a, b), m), 0));
  const fits = (scale: number, margin: number) => textWidth(widest, scale) <= cell - margin && GLYPH_HEIGHT * scale <= cell - margin;
  // counts need a margin in their cell; below about 13-pixel cells (100 classes) they are left out
  const countScale = fits(2, 6) ? 2 : fits(1, 6) ? 1 : 0;
  // The axis titles are centred on the grid; a small grid moves away from the edges to make room for them.
  const gridX = Math.max(PAD + TITLE_HEIGHT + TITLE_GAP + labelExtent + TICK_GAP, PAD + Math.ceil((textWidth(PREDICTED_TITLE, TEXT_SCALE) - grid) / 2));
  const gridY = PAD + Math.max(0, Math.ceil((textWidth(TRUE_TITLE, TEXT_SCALE) - grid) / 2));
  const trueTitle = {
    x: gridX - TICK_GAP - labelExtent - TITLE_GAP - TITLE_HEIGHT,
    y: gridY + Math.floor((grid - textWidth(TRUE_TITLE, TEXT_SCALE)) / 2),
  };
  // below the predicted labels, and below the end of the vertical true-label title when that is longer than the grid
  const predictedTitle = {
    x: gridX + Math.floor((grid - textWidth(PREDICTED_TITLE, TEXT_SCALE)) / 2),
    y: Math.max(gridY + grid + TICK_GAP + labelExtent, trueTitle.y + textWidth(TRUE_TITLE, TEXT_SCALE)) + TITLE_GAP,
  };
  const colorbarX = gridX + grid + COLORBAR_GAP;
  const width = colorbarX + COLORBAR_WIDTH + TICK_GAP + Math.max(...COLORBAR_LABELS.map((l) => textWidth(l, TEXT_SCALE))) + PAD;
  const height = predictedTitle.y + TITLE_HEIGHT + PAD;
  return { classes: n, cell, gridX, gridY, width, height, labelScale, countScale, labels: shown, labelExtent, trueTitle, predictedTitle, colorbarX };
}

/** Pixel rectangle of cell (true class `row`, predicted class `col`). */
export function cellRect(layout: ConfusionLayout, row: number, col: number): { x: number; y: number; size: number } {
  return { x: layout.gridX + col * layout.cell, y: layout.gridY + row * layout.cell, size: layout.cell };
}

/** Draws the heatmap; `matrix[i][j]` counts samples of true class i predicted as j (as confusionMatrix gives). */
export function renderConfusionMatrix(matrix: number[][], labels: string[]): RgbCanvas {
  const layout = confusionLayout(matrix, labels);
  const { cell, gridX, gridY, labelScale, countScale } = layout;
  const n = matrix.length, grid = n * cell;
  const canvas = new RgbCanvas(layout.width, layout.height);

  canvas.fillRect(gridX - 1, gridY - 1, grid + 2, grid + 2, FRAME);
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    row.forEach((count, j) => {
      const fraction = total > 0 ? count / total : 0;
      const { x, y } = cellRect(layout, i, j);
      canvas.fillRect(x, y, cell, cell, blues(fraction));
      if (!countScale) return;
      // light text on the darker half of the colour map, dark on the lighter (as scikit-learn does)
      const text = String(count);
      const color = fraction > 0.5 ? BLUES[0] : BLUES[BLUES.length - 1];
      const tx = x + Math.floor((cell - textWidth(text, countScale)) / 2), ty = y + Math.floor((cell - GLYPH_HEIGHT * countScale) / 2);
      canvas.drawText(text, tx, ty, countScale, color);
    });
  });

  if (labelScale) {
    const glyphHeight = GLYPH_HEIGHT * labelScale;
    layout.labels.forEach((label, i) => {
      const offset = Math.floor((cell - glyphHeight) / 2);
      // true labels right-aligned left of their row; predicted labels vertical below their column, ending at the grid
      canvas.drawText(label, gridX - TICK_GAP - textWidth(label, labelScale), gridY + i * cell + offset, labelScale, INK);
      canvas.drawText(label, gridX + i * cell + offset, gridY + grid + TICK_GAP, labelScale, INK, true);
    });
  }
  canvas.drawText(TRUE_TITLE, layout.trueTitle.x, layout.trueTitle.y, TEXT_SCALE, INK, true);
  canvas.drawText(PREDICTED_TITLE, layout.predictedTitle.x, layout.predictedTitle.y, TEXT_SCALE, INK);

  // colour bar: 100% at the top, 0% at the bottom
  const barX = layout.colorbarX;
  canvas.fillRect(barX - 1, gridY - 1, COLORBAR_WIDTH + 2, grid + 2, FRAME);
  for (let y = 0; y < grid; y++) canvas.fillRect(barX, gridY + y, COLORBAR_WIDTH, 1, blues(1 - (y + 0.5) / grid));
  const labelX = barX + COLORBAR_WIDTH + TICK_GAP;
  canvas.drawText(COLORBAR_LABELS[0], labelX, gridY, TEXT_SCALE, INK);
  canvas.drawText(COLORBAR_LABELS[1], labelX, gridY + Math.floor((grid - TITLE_HEIGHT) / 2), TEXT_SCALE, INK);
  canvas.drawText(COLORBAR_LABELS[2], labelX, gridY + grid - TITLE_HEIGHT, TEXT_SCALE, INK);
  return canvas;
}

/** The heatmap as PNG file bytes. */
export function confusionMatrixPng(matrix: number[][], labels: string[]): Uint8Array {
  const canvas = renderConfusionMatrix(matrix, labels);
  return encodePng({ width: canvas.width, height: canvas.height, data: canvas.data, channels: 3 });
}
