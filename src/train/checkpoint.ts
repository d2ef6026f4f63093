// Checkpoint folders written atomically: everything goes into `<dir>.tmp-<pid>`, which is renamed into place only
// once complete, so a crash or an error at any point leaves either the previous checkpoint or the new one.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { syncFolder, temporaryPath, writeFileDurably } from "../torch/files.js";

export { writeFileDurably };

export function writeJsonDurably(path: string, value: unknown): void {
  writeFileDurably(path, JSON.stringify(value, null, 2) + "\n");
}

export function readJson<T>(path: string): T {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
}

const asideName = (dir: string) => `${dir}.old-${process.pid}`;

/**
 * Fills a fresh `<dir>.tmp-<pid>` with fill(), then swaps it in for dir: the old dir is moved aside to
 * `<dir>.old-<pid>`, the new one renamed to dir, and the old one removed. If fill throws, the temporary folder is
 * removed and dir is untouched. Between the two renames dir is briefly absent; recoverCheckpointFolder() puts the
 * old one back if the process died right there.
 */
export function writeFolderAtomically(dir: string, fill: (temporaryDir: string) => void): void {
  const target = resolve(dir);
  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const temporary = temporaryPath(target);
  rmSync(temporary, { recursive: true, force: true });
  mkdirSync(temporary);
  try {
    fill(temporary);
    syncFolder(temporary);
  } catch (error) {
    rmSync(temporary, { recursive: true, force: true });
    throw new Error(`cannot write checkpoint ${target}: ${(error as Error).message}; the previous checkpoint (if any) is unchanged`);
  }
  const aside = asideName(target);
  if (existsSync(target)) {
    rmSync(aside, { recursive: true, force: true });
    renameSync(target, aside);
  }
  renameSync(temporary, target);
  syncFolder(parent);
  rmSync(aside, { recursive: true, force: true });
}

/**
 * Cleans what an interrupted writeFolderAtomically() left beside dir: half-written `<dir>.tmp-*` folders are
 * removed, and when dir itself is missing, a `<dir>.old-*` folder (the complete previous checkpoint, moved
 * aside just before the crash) is renamed back. Returns whether dir exists afterwards.
 */
export function recoverCheckpointFolder(dir: string): boolean {
  const target = resolve(dir);
  const parent = dirname(target);
  if (!existsSync(parent)) return false;
  const name = basename(target);
  const siblings = readdirSync(parent);
  for (const sibling of siblings) {
    if (sibling.startsWith(`${name}.tmp-`)) rmSync(join(parent, sibling), { recursive: true, force: true });
  }
  const aside = siblings.filter((s) => s.startsWith(`${name}.old-`));
  if (!existsSync(target) && aside.length > 0) renameSync(join(parent, aside[0]), target);
  for (const sibling of aside) rmSync(join(parent, sibling), { recursive: true, force: true });
  return existsSync(target);
}
