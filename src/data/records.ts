// Labelled datasets as users have them: JSONL rows {image | images | video, label} and image folders (one
// subfolder per class). Every bad row is an error naming file:line, or, with skipBad, skipped and reported
// with the same text: data is never dropped silently.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, extname, isAbsolute, join, resolve } from "node:path";
import { decodeImage, isImageFileName } from "./image.js";
import { isFrameFolder } from "./frame_folder.js";
import { seededRandom, shuffledIndices } from "../torch/seeded_random.js";

export interface LabeledRecord {
  /** Where it came from: "file:line" for JSONL rows, the image path for folders. */
  source: string;
  images?: string[];
  video?: string;
  label: string;
  labelIndex: number;
}

export interface SkippedRecord {
  source: string;
  reason: string;
}

export interface RecordSet {
  records: LabeledRecord[];
  /** The label map: index -> class name. */
  labels: string[];
  skipped: SkippedRecord[];
}

export interface ReadOptions {
  /** The known classes, in index order; without it, classes are the sorted distinct labels of the data. */
  labels?: string[];
  /** Skip bad records (reported in `skipped`) instead of throwing at the first. */
  skipBad?: boolean;
  /** Decode every image now, so undecodable files are found before training starts. */
  validate?: boolean;
  /** Folder that relative paths are resolved against (default: the JSONL file's folder). */
  baseDir?: string;
}


/** A problem with one row or file of a dataset: an error naming it, or a skip with skipBad. */
export class BadRecord extends Error {}

/**
 * Calls onRow with each non-blank line of a JSONL file, parsed to an object, and its "file:line" (or each element of
 * a .json file, which holds one JSON array, named "file[index]"). Bad JSON, a
 * row that is not an object, or a BadRecord thrown by onRow is an error naming file:line, or with skipBad is added
 * to skipped. Media paths in rows are relative to the file's folder unless baseDir says otherwise: resolveMedia.
 */
export function forEachJsonlRow(
  path: string,
  options: { skipBad?: boolean; baseDir?: string },
  skipped: SkippedRecord[],
  onRow: (row: Record<string, unknown>, source: string, resolveMedia: (p: string) => string) => void,
): void {
  if (!existsSync(path)) throw new Error(`${path}: file not found`);
  const base = options.baseDir ?? dirname(resolve(path));
  const resolveMedia = (p: string) => (isAbsolute(p) ? p : join(base, p));
  // Editors on Windows write a UTF-8 byte order mark first; it is not part of the first row.
  const text = readFileSync(path, "utf8").replace(/^\uFEFF/, "");
  const visit = (source: string, parse: () => unknown) => {
    try {
      const row = parse();
      if (row === null || typeof row !== "object" || Array.isArray(row)) throw new BadRecord("a row must be a JSON object");
      onRow(row as Record<string, unknown>, source, resolveMedia);
    } catch (error) {
      if (!(error instanceof BadRecord)) throw error;
      if (!options.skipBad) throw new Error(`${source}: ${error.message}`);
      skipped.push({ source, reason: error.message });
    }
  };
  // a .json file is one JSON array of rows (LLaVA's and LLaMA-Factory's datasets): each row is named file[index]
  if (extname(path).toLowerCase() === ".json") {
    let rows: unknown;
    try {
      rows = JSON.parse(text);
    } catch (error) {
      throw new Error(`${path}: bad JSON (${(error as Error).message}); a dataset file is JSON Lines (one object per line) or one JSON array of objects`);
    }
    if (!Array.isArray(rows)) throw new Error(`${path}: a JSON dataset file must hold one array of objects`);
    if (rows.length === 0) throw new Error(`${path}: no records in the file (the array is empty)`);
    rows.forEach((row, i) => visit(`${path}[${i}]`, () => row));
    return;
  }
  const lines = text.split("\n");
  // An empty file would otherwise train on nothing (or evaluate nothing) far from the cause.
  if (lines.every((line) => line.trim() === "")) throw new Error(`${path}: no records in the file (it is empty); give a JSONL file with one JSON object per line`);
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    visit(`${path}:${i + 1}`, () => {
      try {
        return JSON.parse(line);
      } catch (error) {
        throw new BadRecord(`bad JSON (${(error as Error).message})`);
      }
    });
  });
}

function checkImage(path: string, validate: boolean): void {
  if (!existsSync(path)) throw new BadRecord(`image file not found: ${path}`);
  if (validate) {
    try {
      decodeImage(readFileSync(path), path);
    } catch (error) {
      throw new BadRecord(`cannot decode image: ${(error as Error).message}`);
    }
  }
}

function labelOf(raw: unknown, labels: string[] | undefined): { label: string; index: number | null } {
  if (typeof raw === "number") {
    if (!Number.isInteger(raw) || raw < 0) throw new BadRecord(`label index ${raw} is not a non-negative integer`);
    if (!labels) throw new BadRecord(`label index ${raw} needs a label list (labels.json) to name its class`);
    if (raw >= labels.length) throw new BadRecord(`label index ${raw} >= number of classes (${labels.length})`);
    return { label: labels[raw], index: raw };
  }
  if (typeof raw !== "string" || raw.length === 0) throw new BadRecord(`"label" must be a class name or an index, got ${JSON.stringify(raw)}`);
  if (labels) {
    const index = labels.indexOf(raw);
    if (index < 0) throw new BadRecord(`unknown label '${raw}' (known: ${labels.slice(0, 20).join(", ")}${labels.length > 20 ? ", ..." : ""})`);
    return { label: raw, index };
  }
  return { label: raw, index: null };
}

function finish(rows: { record: Omit<LabeledRecord, "labelIndex">; index: number | null }[], skipped: SkippedRecord[], labels?: string[]): RecordSet {
  const classes = labels ?? [...new Set(rows.map((r) => r.record.label))].sort();
  const records = rows.map(({ record, index }) => ({ ...record, labelIndex: index ?? classes.indexOf(record.label) }));
  return { records, labels: classes, skipped };
}

/** Reads a JSONL file of {image | images | video, label} rows. */
export function readJsonlRecords(path: string, options: ReadOptions = {}): RecordSet {
  const rows: { record: Omit<LabeledRecord, "labelIndex">; index: number | null }[] = [];
  const skipped: SkippedRecord[] = [];
  forEachJsonlRow(path, options, skipped, (row, source, at) => {
    const media = ["image", "images", "video"].filter((k) => row[k] !== undefined);
    if (media.length !== 1) throw new BadRecord(`a row needs exactly one of "image", "images", "video" (found ${media.length ? media.join(", ") : "none"})`);
    if (row.label === undefined) throw new BadRecord('missing "label"');
    const { label, index } = labelOf(row.label, options.labels);
    const record: Omit<LabeledRecord, "labelIndex"> = { source, label };
    if (row.video !== undefined) {
      if (typeof row.video !== "string") throw new BadRecord('"video" must be a path');
      if (!existsSync(at(row.video))) throw new BadRecord(`video file not found: ${at(row.video)}`);
      record.video = at(row.video);
    } else {
      const list = row.image !== undefined ? [row.image] : row.images;
      if (!Array.isArray(list) || list.length === 0 || list.some((p) => typeof p !== "string")) throw new BadRecord('"image" must be a path and "images" a non-empty list of paths');
      record.images = (list as string[]).map(at);
      for (const image of record.images) checkImage(image, options.validate ?? false);
    }
    rows.push({ record, index });
  });
  return finish(rows, skipped, options.labels);
}

/** Reads a folder with one subfolder of images per class (classes in sorted order unless labels are given). */
export function readImageFolder(dir: string, options: Omit<ReadOptions, "baseDir"> = {}): RecordSet {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder`);
  const classDirs = readdirSync(dir).filter((name) => statSync(join(dir, name)).isDirectory()).sort();
  if (classDirs.length === 0) throw new Error(`${dir}: no class subfolders (expected ${dir}/<class>/<image>.png)`);
  const rows: { record: Omit<LabeledRecord, "labelIndex">; index: number | null }[] = [];
  const skipped: SkippedRecord[] = [];
  for (const name of classDirs) {
    for (const file of readdirSync(join(dir, name)).sort()) {
      const path = join(dir, name, file);
      if (!isImageFileName(file)) continue;
      try {
        const { label, index } = labelOf(name, options.labels);
        checkImage(path, options.validate ?? false);
        rows.push({ record: { source: path, images: [path], label }, index });
      } catch (error) {
        if (!(error instanceof BadRecord)) throw error;
        if (!options.skipBad) throw new Error(`${path}: ${error.message}`);
        skipped.push({ source: path, reason: error.message });
      }
    }
  }
  return finish(rows, skipped, options.labels);
}

/** Reads labels.json (a JSON list of class names, index order). */
export function readLabelMap(path: string): string[] {
  let labels: unknown;
  try {
    labels = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
  if (!Array.isArray(labels) || labels.some((l) => typeof l !== "string") || new Set(labels).size !== labels.length) {
    throw new Error(`${path}: a label map is a JSON list of distinct class names`);
  }
  return labels as string[];
}

/** Deterministic shuffled split (mulberry32 on the seed): about valRatio of the records go to val. */
export function splitRecords<T>(records: T[], valRatio: number, seed: number): { train: T[]; val: T[] } {
  if (!(valRatio >= 0 && valRatio < 1)) throw new Error(`validation ratio must be in [0, 1), got ${valRatio}`);
  const order = shuffledIndices(records.length, seededRandom(seed));
  const valCount = Math.round(records.length * valRatio);
  return { val: order.slice(0, valCount).map((i) => records[i]), train: order.slice(valCount).map((i) => records[i]) };
}

/** Labeled records of a JSONL file or an image folder (one subfolder per class). */
export function readLabeledRecords(path: string, options: Omit<ReadOptions, "baseDir"> = {}): RecordSet {
  const resolved = resolve(path);
  if (!existsSync(resolved)) throw new Error(`${path}: no such file or folder`);
  return isFrameFolder(resolved) && !resolved.endsWith(".jsonl") ? readImageFolder(resolved, options) : readJsonlRecords(resolved, options);
}
