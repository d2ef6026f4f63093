// GIF, BMP, WebP and TIFF files decode to the pixels they were written with (exactly for the lossless ones), are
// recognised by their first bytes whatever their name, and a damaged file is an error naming it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { decodeImage, encodePng, loadImage } from "../../src/data/image.js";
import { makeSyntheticImages } from "../../src/data/synthetic.js";
import { stillFormatOf } from "../../src/data/still_formats.js";
import { readImageFolder } from "../../src/data/records.js";
import { loadFrameFolder } from "../../src/data/frame_folder.js";
import { encodeBmp, encodeGif, encodeTiff, encodeWebp, paletteImage } from "./still_fixtures.js";

const image = paletteImage(0);
const other = paletteImage(4);

test("the test image is a red circle with more colours than a few, and no more than a GIF palette holds", () => {
  assert.equal(makeSyntheticImages(1, { size: 32, seed: 7 })[0].label, "red circle");
  const colours = new Set(Array.from({ length: image.width * image.height }, (_, i) => image.data.subarray(3 * i, 3 * i + 3).join(",")));
  assert.equal(colours.size, 95);
});

test("GIF: the pixels of a still GIF, and the first frame of an animation", () => {
  const gif = decodeImage(encodeGif(image), "a.gif");
  assert.equal(gif.format, "gif");
  assert.deepEqual([gif.width, gif.height], [32, 32]);
  assert.deepEqual(gif.data, image.data);
  assert.deepEqual(decodeImage(encodeGif(image, [other, other]), "anim.gif").data, image.data);
});

test("BMP: 24-bit bottom-up and top-down files give the pixels", () => {
  for (const topDown of [false, true]) {
    const bmp = decodeImage(encodeBmp(image, { topDown }), "a.bmp");
    assert.equal(bmp.format, "bmp");
    assert.deepEqual([bmp.width, bmp.height], [32, 32]);
    assert.deepEqual(bmp.data, image.data, `topDown ${topDown}`);
  }
  // an odd width: rows padded to 4 bytes
  const odd = { width: 5, height: 3, data: image.data.slice(0, 45) };
  assert.deepEqual(decodeImage(encodeBmp(odd), "odd.bmp").data, odd.data);
});

test("WebP: lossless gives the pixels exactly, lossy close to them", async () => {
  const lossless = decodeImage(await encodeWebp(image, { lossless: true }), "a.webp");
  assert.equal(lossless.format, "webp");
  assert.deepEqual(lossless.data, image.data);
  const lossy = decodeImage(await encodeWebp(image, { lossless: false, quality: 90 }), "b.webp");
  assert.deepEqual([lossy.width, lossy.height], [32, 32]);
  const meanError = lossy.data.reduce((s, v, i) => s + Math.abs(v - image.data[i]), 0) / lossy.data.length;
  assert.ok(meanError > 0 && meanError < 8, `mean absolute error ${meanError}`);
});

test("TIFF: an RGBA TIFF gives the pixels", () => {
  const tiff = decodeImage(encodeTiff(image), "a.tif");
  assert.equal(tiff.format, "tiff");
  assert.deepEqual(tiff.data, image.data);
});

test("formats are told by their first bytes, not the file name", () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-still-"));
  const files: [string, Uint8Array, string][] = [["gif-named.png", encodeGif(image), "gif"], ["bmp-named.jpg", encodeBmp(image), "bmp"], ["png-named.gif", encodePng(image), "png"]];
  for (const [name, bytes, format] of files) {
    writeFileSync(join(dir, name), bytes);
    const decoded = loadImage(join(dir, name));
    assert.equal(decoded.format, format, name);
    assert.deepEqual(decoded.data, image.data, name);
  }
  assert.equal(stillFormatOf(new TextEncoder().encode("BMW is not a bitmap")), null);
  assert.equal(stillFormatOf(new TextEncoder().encode("RIFF\0\0\0\0AVI LIST")), null);
});

test("a damaged GIF, BMP, WebP or TIFF is an error naming the file and the format", async () => {
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-still-bad-"));
  const webpBytes = await encodeWebp(image, { lossless: true });
  const cases: [string, Uint8Array, RegExp][] = [
    ["cut.webp", webpBytes.subarray(0, 40), /cut\.webp: invalid or damaged WEBP file/],
    ["cut.gif", encodeGif(image).subarray(0, 30), /cut\.gif: invalid or damaged GIF file/],
    ["cut.bmp", encodeBmp(image).subarray(0, 100), /cut\.bmp: invalid or damaged BMP file/],
    ["cut.tif", encodeTiff(image).subarray(0, 12), /cut\.tif: invalid or damaged TIFF file/],
  ];
  for (const [name, bytes, message] of cases) {
    writeFileSync(join(dir, name), bytes);
    assert.throws(() => loadImage(join(dir, name)), (error: Error) => {
      assert.match(error.message, message);
      assert.ok(error.message.startsWith(join(dir, name)), error.message);
      return true;
    });
  }
});

test("image-folder datasets and frame folders take every still format, not PNG and JPEG alone", async () => {
  const root = mkdtempSync(join(tmpdir(), "vlmkit-still-folders-"));
  mkdirSync(join(root, "classes", "red"), { recursive: true });
  mkdirSync(join(root, "classes", "blue"), { recursive: true });
  writeFileSync(join(root, "classes", "red", "a.gif"), encodeGif(image));
  writeFileSync(join(root, "classes", "red", "b.webp"), await encodeWebp(image, { lossless: true }));
  writeFileSync(join(root, "classes", "blue", "c.bmp"), encodeBmp(other));
  writeFileSync(join(root, "classes", "blue", "notes.txt"), "not an image");
  const set = readImageFolder(join(root, "classes"), { validate: true });
  assert.deepEqual(set.records.map((r) => [r.label, basename(r.images![0])]), [["blue", "c.bmp"], ["red", "a.gif"], ["red", "b.webp"]]);
  const frames = join(root, "clip");
  mkdirSync(frames);
  writeFileSync(join(frames, "frame_1.bmp"), encodeBmp(image));
  writeFileSync(join(frames, "frame_2.gif"), encodeGif(other));
  const decoded = loadFrameFolder(frames, 2);
  assert.deepEqual(decoded.map((f) => Buffer.from(f.data).equals(Buffer.from([image, other][decoded.indexOf(f)].data))), [true, true]);
});
