// A run folder: run.yaml (the resolved configuration, absolute paths), labels.json, media.json (how many training
// records were images and how many videos: what predict takes), model/ (random base weights), the Trainer's files
// (train_options.json, metrics.jsonl, tensorboard/, checkpoints/{best,last}/), adapter/ (PEFT files) and
// eval/<split>/ (reports). While a process writes it, run.lock names that process; a second writer is refused, and
// a lock left by a process that is gone is taken over.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { readLabelMap } from "../data/records.js";
import type { TrainingMedia } from "../data/media.js";
import { processAlive, writeFileAtomically } from "../torch/files.js";
import { readRunConfig, runConfigToYaml, type RunConfig } from "./config.js";

export const RUN_FILE = "run.yaml";
export const LABELS_FILE = "labels.json";
export const LOCK_FILE = "run.lock";
export const MEDIA_FILE = "media.json";

interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

export class RunFolder {
  readonly dir: string;
  #locked = false;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  /** An existing run folder (one that holds run.yaml); an error says what the folder is missing. */
  static open(dir: string): RunFolder {
    const folder = new RunFolder(dir);
    if (!existsSync(folder.runFile)) throw new Error(`${folder.dir} is not a run folder (no ${RUN_FILE}); give the output_dir of \`vlmkit train\``);
    return folder;
  }

  get runFile(): string {
    return join(this.dir, RUN_FILE);
  }
  get labelsFile(): string {
    return join(this.dir, LABELS_FILE);
  }
  /** The base weights of a run whose model was built with random weights. */
  get modelDir(): string {
    return join(this.dir, "model");
  }
  get adapterDir(): string {
    return join(this.dir, "adapter");
  }
  get lockFile(): string {
    return join(this.dir, LOCK_FILE);
  }
  evalDir(split: string): string {
    return join(this.dir, "eval", split);
  }

  /** The weights of checkpoints/best, else checkpoints/last; an error when training never saved one. */
  bestWeights(): string {
    for (const name of ["best", "last"]) {
      const file = join(this.dir, "checkpoints", name, "weights.safetensors");
      if (existsSync(file)) return file;
    }
    throw new Error(`${this.dir} has no checkpoint (checkpoints/best or checkpoints/last); did training finish?`);
  }

  /** True when the run kept its random-init base weights in model/. */
  get hasOwnModel(): boolean {
    return existsSync(join(this.modelDir, "config.json"));
  }

  readConfig(): RunConfig {
    return readRunConfig(this.runFile);
  }

  readLabels(): string[] {
    return readLabelMap(this.labelsFile);
  }

  get mediaFile(): string {
    return join(this.dir, MEDIA_FILE);
  }

  /** media.json: how many training records had images and how many a video, so predict knows what the run takes. */
  writeMedia(media: TrainingMedia): void {
    writeFileAtomically(this.mediaFile, JSON.stringify(media) + "\n");
  }

  /** What media.json records, or null for a run folder written before runs recorded it; a damaged file is an error naming it. */
  readMedia(): TrainingMedia | null {
    if (!existsSync(this.mediaFile)) return null;
    let media: Partial<TrainingMedia>;
    try {
      media = JSON.parse(readFileSync(this.mediaFile, "utf8"));
    } catch (error) {
      throw new Error(`${this.mediaFile}: ${(error as Error).message}; delete it and predict treats inputs as older runs did`);
    }
    if (!Number.isInteger(media?.images) || !Number.isInteger(media?.videos)) {
      throw new Error(`${this.mediaFile}: expected {"images": <count>, "videos": <count>}; delete it and predict treats inputs as older runs did`);
    }
    return { images: media.images!, videos: media.videos! };
  }

  /** Writes run.yaml (vlmkit train --config run.yaml reruns it) and labels.json. */
  writeConfig(config: RunConfig, labels: string[]): void {
    writeFileAtomically(this.runFile, runConfigToYaml(config, "resolved run configuration (vlmkit train --config this-file reruns it)"));
    writeFileAtomically(this.labelsFile, JSON.stringify(labels, null, 2) + "\n");
  }

  /**
   * Takes the folder's lock (creating the folder): fails when another live process holds it, naming it; a lock
   * whose process is gone is taken over.
   */
  lock(command = process.argv.slice(1).join(" ")): void {
    mkdirSync(this.dir, { recursive: true });
    const info: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.lockFile, "wx");
        try {
          writeSync(fd, JSON.stringify(info) + "\n");
        } finally {
          closeSync(fd);
        }
        this.#locked = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const holder = this.#readLock();
      if (holder && holder.pid !== process.pid && (holder.host !== info.host || processAlive(holder.pid))) {
        throw new Error(
          `${this.dir} is in use by process ${holder.pid} on ${holder.host} (started ${holder.started}: ${holder.command}); ` +
            `wait for it to finish, or delete ${this.lockFile} if that process is gone`,
        );
      }
      // left by a process that no longer runs (or by this one): take it over
      rmSync(this.lockFile, { force: true });
    }
    throw new Error(`${this.lockFile}: could not take the run folder's lock`);
  }

  #readLock(): LockInfo | null {
    try {
      return JSON.parse(readFileSync(this.lockFile, "utf8")) as LockInfo;
    } catch {
      return null;
    }
  }

  /** Releases the lock this process holds (nothing when it holds none). */
  unlock(): void {
    if (!this.#locked) return;
    const holder = this.#readLock();
    if (holder?.pid === process.pid) rmSync(this.lockFile, { force: true });
    this.#locked = false;
  }

  /** Runs fn with the lock held, releasing it however fn ends. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    this.lock();
    try {
      return await fn();
    } finally {
      this.unlock();
    }
  }
}
