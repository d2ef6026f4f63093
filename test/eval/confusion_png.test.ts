import { test } from "node:test";
import assert from "node:assert/strict";
import { decodePng } from "../../src/data/png.js";
import { RgbCanvas, glyphRows, textWidth, truncateText } from "../../src/eval/bitmap_font.js";
import { blues, cellRect, confusionLayout, confusionMatrixPng, renderConfusionMatrix } from "../../src/eval/confusion_png.js";

const WHITEST = [247, 251, 255], DARKEST = [8, 48, 107]; // the ends of matplotlib's Blues

function decoded(matrix: number[][], labels: string[]) {
  const img = decodePng(confusionMatrixPng(matrix, labels), "confusion.png");
  assert.equal(img.channels, 3);
  const pixel = (x: number, y: number) => Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
  return { ...img, pixel };
}

// Pixels of pure black (the labels' ink) in a rectangle.
function inkIn(img: { width: number; data: Uint8Array }, x0: number, y0: number, w: number, h: number): number {
  let n = 0;
  for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) {
    const o = (y * img.width + x) * 3;
    if (img.data[o] === 0 && img.data[o + 1] === 0 && img.data[o + 2] === 0) n++;
  }
  return n;
}

test("the 5x7 font: known glyphs, '?' for characters outside printable ASCII, widths and truncation", () => {
  const bitmap = (rows: string[]) => rows.map((r) => parseInt(r.replace(/\./g, "0").replace(/#/g, "1"), 2));
  assert.deepEqual(glyphRows("7"), bitmap(["#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."]));
  assert.deepEqual(glyphRows("1"), bitmap(["..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."]));
  assert.deepEqual(glyphRows("A"), bitmap([".###.", "#...#", "#...#", "#...#", "#####", "#...#", "#...#"]));
  assert.deepEqual(glyphRows(" "), [0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(glyphRows("é"), glyphRows("?"));
  assert.deepEqual(glyphRows("\u{1F600}"), glyphRows("?"));
  // every printable character has a glyph of its own (no two identical, only the space is empty)
  const all = Array.from({ length: 95 }, (_, i) => glyphRows(String.fromCharCode(32 + i)).join(","));
  assert.equal(new Set(all).size, 95);
  assert.equal(textWidth("", 2), 0);
  assert.equal(textWidth("10", 1), 11);
  assert.equal(textWidth("10", 2), 22);
  assert.equal(truncateText("short", 20), "short");
  assert.equal(truncateText("abcdefghijklmnopqrstuvwxyz", 20), "abcdefghijklmnopqr..");
});

test("vertical text is the horizontal text turned 90 degrees counter-clockwise", () => {
  // "L7" at scale 2: (2*6-1)*2 = 22 pixels long, 14 high
  const flat = new RgbCanvas(22, 14), up = new RgbCanvas(14, 22);
  flat.drawText("L7", 0, 0, 2, [0, 0, 0]);
  up.drawText("L7", 0, 0, 2, [0, 0, 0], true);
  for (let y = 0; y < 14; y++) for (let x = 0; x < 22; x++) assert.deepEqual(up.pixel(y, 21 - x), flat.pixel(x, y), `(${x}, ${y})`);
  assert.ok(flat.data.includes(0));
});

test("a 2-class matrix: size from the layout rules, shading by row, counts and labels drawn", () => {
  const matrix = [[6, 0], [2, 2]];
  const img = decoded(matrix, ["cat", "dog"]);
  // 64-pixel cells (grid 128); names at scale 2, "cat" is (3*6-1)*2 = 34 pixels; grid left at 12+14+10+34+6 = 76 and
  // top at 12; colour bar at 76+128+20 = 224, then 16 + 6 + "100%" (46) + 12 -> 304 wide; predicted title at
  // 12+128+6+34+10 = 190, + 14 + 12 -> 216 high
  assert.deepEqual([img.width, img.height], [304, 216]);
  const layout = confusionLayout(matrix, ["cat", "dog"]);
  assert.deepEqual([layout.cell, layout.gridX, layout.gridY, layout.labelScale, layout.countScale], [64, 76, 12, 2, 2]);

  // sample near each cell's corner, clear of the centred count
  const shade = (i: number, j: number) => {
    const { x, y } = cellRect(layout, i, j);
    return img.pixel(x + 3, y + 3);
  };
  assert.deepEqual(shade(0, 0), DARKEST); // 6 of 6
  assert.deepEqual(shade(0, 1), WHITEST); // 0 of 6
  assert.deepEqual(shade(1, 0), [107, 174, 214]); // 2 of 4 (by row, not 2 of the largest count 6): the middle Blues step
  assert.deepEqual(shade(1, 1), shade(1, 0));
  assert.deepEqual(blues(0.5), [107, 174, 214]);
  const sum = (p: number[]) => p[0] + p[1] + p[2];
  assert.ok(sum(shade(0, 0)) < sum(shade(0, 1)));

  // "6" at scale 2, centred: its pixels light on the dark cell, every font pixel where the glyph says
  const { x, y } = cellRect(layout, 0, 0);
  const tx = x + Math.floor((64 - 10) / 2), ty = y + Math.floor((64 - 14) / 2);
  const six = ["..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."];
  for (let r = 0; r < 7; r++) for (let c = 0; c < 5; c++) {
    assert.deepEqual(img.pixel(tx + 2 * c + 1, ty + 2 * r + 1), six[r][c] === "#" ? WHITEST : DARKEST, `'6' pixel row ${r} col ${c}`);
  }
  // on the light cell the zero is dark
  const z = cellRect(layout, 0, 1);
  assert.deepEqual(img.pixel(z.x + 27 + 1, z.y + 25 + 1), WHITEST); // top-left pixel of "0" (.###.) is blank...
  assert.deepEqual(img.pixel(z.x + 27 + 3, z.y + 25 + 1), DARKEST); // ...its second column is ink
  assert.deepEqual(img.pixel(z.x + 3, z.y + 3), WHITEST);

  // class names: ink left of each row and below each column
  for (let i = 0; i < 2; i++) {
    assert.ok(inkIn(img, layout.gridX - 6 - 34, layout.gridY + i * 64, 34, 64) > 20, `row label ${i}`);
    assert.ok(inkIn(img, layout.gridX + i * 64, layout.gridY + 128 + 6, 64, 34) > 20, `column label ${i}`);
  }
  // and nothing but the frame's grey and the shades inside the grid
  assert.equal(inkIn(img, layout.gridX, layout.gridY, 128, 128), 0);
});

test("different counts or names change only their own part of the picture", () => {
  const a = renderConfusionMatrix([[1, 0], [0, 1]], ["a", "b"]);
  const b = renderConfusionMatrix([[7, 0], [0, 1]], ["a", "b"]);
  const layout = confusionLayout([[1, 0], [0, 1]], ["a", "b"]);
  const { x, y, size } = cellRect(layout, 0, 0);
  let inside = 0;
  for (let py = 0; py < a.height; py++) for (let px = 0; px < a.width; px++) {
    if (a.pixel(px, py).join() === b.pixel(px, py).join()) continue;
    assert.ok(px >= x && px < x + size && py >= y && py < y + size, `(${px}, ${py}) changed outside cell (0, 0)`);
    inside++;
  }
  // as many changed pixels as font pixels where "1" and "7" differ, 4 screen pixels each at scale 2
  const one = "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.", seven = "##### ....# ...#. ..#.. .#... .#... .#...";
  assert.equal(inside, 4 * [...one].filter((ch, i) => ch !== seven[i]).length);
  const renamed = renderConfusionMatrix([[1, 0], [0, 1]], ["a", "c"]);
  assert.notDeepEqual(renamed.data, a.data);
});

test("a row with no samples is white; a class absent from the predictions still gets its column", () => {
  const layout = confusionLayout([[0, 0], [2, 0]], ["x", "y"]);
  const img = decoded([[0, 0], [2, 0]], ["x", "y"]);
  const at = (i: number, j: number) => img.pixel(cellRect(layout, i, j).x + 3, cellRect(layout, i, j).y + 3);
  assert.deepEqual(at(0, 0), WHITEST);
  assert.deepEqual(at(0, 1), WHITEST);
  assert.deepEqual(at(1, 0), DARKEST);
  assert.deepEqual(at(1, 1), WHITEST);
});

test("long names are cut with '..'; unknown characters drawn as '?'", () => {
  const long = "a-very-long-class-name-indeed";
  const layout = confusionLayout([[1, 0], [0, 1]], [long, "ok"]);
  assert.deepEqual(layout.labels, ["a-very-long-class-..", "ok"]);
  assert.equal(layout.labelExtent, textWidth("a-very-long-class-..", 2));
  const accented = renderConfusionMatrix([[1, 0], [0, 1]], ["café", "ok"]);
  const question = renderConfusionMatrix([[1, 0], [0, 1]], ["caf?", "ok"]);
  assert.deepEqual(accented.data, question.data);
});

test("100 classes: small cells without counts, small names; 400 classes: no names, still an image", () => {
  const square = (n: number): number[][] => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 9 : (i + j) % 7 === 0 ? 1 : 0)));
  const names = (n: number) => Array.from({ length: n }, (_, i) => `class_${i}`);
  const hundred = confusionLayout(square(100), names(100));
  assert.deepEqual([hundred.cell, hundred.labelScale, hundred.countScale], [12, 1, 0]);
  const img = decoded(square(100), names(100));
  assert.deepEqual([img.width, img.height], [hundred.width, hundred.height]);
  const c = cellRect(hundred, 50, 50), off = cellRect(hundred, 50, 52); // 50+52 is not a multiple of 7: a zero
  const row50 = square(100)[50].reduce((a, b) => a + b, 0);
  assert.deepEqual(img.pixel(c.x + 6, c.y + 6), Array.from(blues(9 / row50)));
  assert.deepEqual(img.pixel(off.x + 6, off.y + 6), WHITEST);

  const many = confusionLayout(square(400), names(400));
  assert.deepEqual([many.cell, many.labelScale, many.countScale, many.labelExtent], [3, 0, 0, 0]);
  const big = decoded(square(400), names(400));
  assert.deepEqual([big.width, big.height], [many.width, many.height]);
  assert.ok(big.width < 1400 && big.height < 1400, `${big.width}x${big.height}`);
});

test("an empty or malformed matrix is refused with a clear error", () => {
  assert.throws(() => confusionMatrixPng([], []), /confusion matrix image: the matrix has no classes/);
  assert.throws(() => confusionMatrixPng([[1, 2], [3, 4]], ["a"]), /1 class names for a 2-class matrix/);
  assert.throws(() => confusionMatrixPng([[1, 2], [3]], ["a", "b"]), /row 1 \(b\) has 1 counts, expected 2/);
  assert.throws(() => confusionMatrixPng([[1, -1], [0, 0]], ["a", "b"]), /count \[0\]\[1\] = -1 is not a non-negative integer/);
  assert.throws(() => confusionMatrixPng([[1, 0.5], [0, 0]], ["a", "b"]), /count \[0\]\[1\] = 0.5/);
});
