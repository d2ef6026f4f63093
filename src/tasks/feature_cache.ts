// Features of a frozen backbone kept on disk between runs, so that a second `vlmkit train` or `vlmkit eval` on the
// same model, processor, prompt and data runs the backbone on nothing.
//
// Layout: <root>/<key>/ where key = sha256 of the canonical JSON of everything the features depend on except the
// samples (model weights, processor files and settings, prompt, hidden layer, pooling, dtype, device kind, libtorch
// version). Inside: identity.json (that JSON, for people) and shards features-<hash>.safetensors, each one tensor
// `features` [n, hidden] float32 with the ids of its n samples and a sha256 of the tensor's bytes in the metadata.
// A sample's id is the sha256 of its media files' contents. Shards are written to a temporary file and renamed, so
// an interrupted run leaves whole shards or none; a shard that fails to open or to check is reported, deleted and
// its samples are computed again.
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, unlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { SafetensorsFile, writeSafetensors, stack, tidy, keep, type Tensor } from "../torch/index.js";
import { isFrameFolder, listImageFiles } from "../data/frame_folder.js";
import { processAlive, temporaryWriterPid, writeFileAtomically } from "../torch/files.js";

const STILL_IMAGE = /\.(png|jpe?g)$/i;

/** Bumped when what a feature means changes in code (pooling, prompt building): old caches stop matching. */
export const FEATURE_CACHE_FORMAT = 1;

const FEATURES = "features";
const SHARD = /^features-[0-9a-f]{64}\.safetensors$/;

export function sha256(data: string | Buffer | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** JSON with object keys sorted at every level (undefined members dropped): equal values, equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

// ---- file contents ----

interface HashMemo {
  [path: string]: { stat: string; sha256: string };
}

/**
 * sha256 of files' contents. Contents, not size + mtime: a copy or a restored backup (same bytes, new times) keeps
 * its features, and an edit that keeps size and mtime (cp -p, touch -d) still invalidates. So that later runs do
 * not reread every weight and media file, a hash is remembered per path with the file's size, mtime, ctime, inode
 * and device; the kernel sets ctime on every change and nothing can set it back, so a file whose stat is unchanged
 * has unchanged contents.
 */
export class FileHasher {
  readonly #memoPath: string | null;
  #memo: HashMemo = {};
  #dirty = false;

  constructor(memoPath: string | null = null) {
    this.#memoPath = memoPath;
    if (memoPath && existsSync(memoPath)) {
      try {
        const parsed = JSON.parse(readFileSync(memoPath, "utf8"));
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) this.#memo = parsed as HashMemo;
      } catch {
        // an unreadable memo only costs rehashing
      }
    }
  }

  hash(path: string): string {
    const absolute = resolve(path);
    let stats;
    try {
      stats = statSync(absolute, { bigint: true });
    } catch (error) {
      throw new Error(`${absolute}: cannot read it to identify cached features (${(error as Error).message})`);
    }
    const stat = `${stats.size}:${stats.mtimeNs}:${stats.ctimeNs}:${stats.ino}:${stats.dev}`;
    const known = this.#memo[absolute];
    if (known && known.stat === stat) return known.sha256;
    const digest = hashFileContents(absolute);
    this.#memo[absolute] = { stat, sha256: digest };
    this.#dirty = true;
    return digest;
  }

  /** Writes the remembered hashes (atomically; a concurrent run's entries may be lost, which costs rehashing). */
  flush(): void {
    if (!this.#memoPath || !this.#dirty) return;
    mkdirSync(dirname(this.#memoPath), { recursive: true });
    writeFileAtomically(this.#memoPath, JSON.stringify(this.#memo));
    this.#dirty = false;
  }
}

function hashFileContents(path: string): string {
  const hash = createHash("sha256");
  const buffer = Buffer.alloc(1 << 20);
  const fd = openSync(path, "r");
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}


/** Content hashes of the named files of a folder that exist (name -> sha256), names sorted. */
export function folderFileHashes(hasher: FileHasher, folder: string, names: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...names].sort()) {
    const path = join(folder, name);
    if (existsSync(path) && statSync(path).isFile()) out[name] = hasher.hash(path);
  }
  return out;
}

/** The weights of a model folder: config.json, the index and every *.safetensors file, by content. */
export function modelFolderIdentity(hasher: FileHasher, folder: string): Record<string, string> {
  const names = readdirSync(folder).filter((name) => name.endsWith(".safetensors") || name === "model.safetensors.index.json" || name === "config.json");
  if (!names.some((name) => name.endsWith(".safetensors"))) throw new Error(`${folder}: no .safetensors weights to identify the model's cached features by`);
  return folderFileHashes(hasher, folder, names);
}

// ---- the cache ----

export interface FeatureCacheOptions {
  /** Frames sampled from a video folder: part of a video sample's id. */
  numFrames?: number;
  /** Where warnings go (a shard that cannot be read). */
  log?: (line: string) => void;
}

interface ShardEntry {
  file: string;
  row: number;
}

/** On-disk features of one backbone setting (see the top of this file), by sample id. */
export class FeatureCache {
  readonly root: string;
  /** sha256 of the canonical identity: the folder's name. */
  readonly key: string;
  readonly folder: string;
  readonly identity: unknown;
  readonly hasher: FileHasher;
  readonly #numFrames: number;
  readonly #log: (line: string) => void;
  #index: Map<string, ShardEntry> | null = null;

  constructor(root: string, identity: unknown, hasher: FileHasher, options: FeatureCacheOptions = {}) {
    this.root = resolve(root);
    this.identity = identity;
    this.key = sha256(canonicalJson({ format: FEATURE_CACHE_FORMAT, identity }));
    this.folder = join(this.root, this.key);
    this.hasher = hasher;
    this.#numFrames = options.numFrames ?? 8;
    this.#log = options.log ?? ((line) => console.warn(line));
  }

  /**
   * The id of a sample whose images come from `media` (image files, a video file or frame folder): the hash of the
   * files' contents in order, not of their paths, so moving a dataset keeps its features.
   */
  sampleId(media: string[]): string {
    const parts = media.map((path) => {
      if (isFrameFolder(path)) {
        const frames = listImageFiles(path);
        return { frames: this.#numFrames, files: frames.map((frame) => this.hasher.hash(frame)) };
      }
      // a video file: its frames depend on how many are sampled
      if (!STILL_IMAGE.test(path)) return { frames: this.#numFrames, file: this.hasher.hash(path) };
      return this.hasher.hash(path);
    });
    return sha256(canonicalJson(parts));
  }

  /** Where each cached id lies; opens every shard's header once (a bad shard is reported and deleted). */
  #shards(): Map<string, ShardEntry> {
    if (this.#index) return this.#index;
    const index = new Map<string, ShardEntry>();
    if (existsSync(this.folder)) {
      for (const name of readdirSync(this.folder).sort()) {
        removeIfOrphaned(join(this.folder, name));
        if (!SHARD.test(name)) continue;
        const file = join(this.folder, name);
        try {
          const ids = shardIds(new SafetensorsFile(file));
          ids.forEach((id, row) => {
            if (!index.has(id)) index.set(id, { file, row });
          });
        } catch (error) {
          this.#discard(file, error);
        }
      }
    }
    this.#index = index;
    return index;
  }

  #discard(file: string, error: unknown): void {
    this.#log(`warning: feature cache ${file} is unreadable (${(error as Error).message}); deleting it, its features will be computed again`);
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  }

  /** Whether the id has features on disk. */
  has(id: string): boolean {
    return this.#shards().has(id);
  }

  /** The cached features [hidden] (float32, CPU) of those ids that have them; the caller owns the tensors. */
  load(ids: string[]): Map<string, Tensor> {
    const index = this.#shards();
    const byFile = new Map<string, Map<string, number>>();
    for (const id of new Set(ids)) {
      const entry = index.get(id);
      if (!entry) continue;
      let rows = byFile.get(entry.file);
      if (!rows) byFile.set(entry.file, (rows = new Map()));
      rows.set(id, entry.row);
    }
    const out = new Map<string, Tensor>();
    for (const [file, rows] of byFile) {
      try {
        const picked = tidy(() => {
          const shard = new SafetensorsFile(file);
          const all = shard.get(FEATURES);
          const digest = shard.metadata.sha256;
          if (digest !== tensorDigest(all)) throw new Error(`its features do not match their checksum ${digest}`);
          const unbound = all.unbind(0);
          return keep([...rows.values()].map((row) => unbound[row].clone()));
        });
        [...rows.keys()].forEach((id, i) => out.set(id, picked[i]));
      } catch (error) {
        this.#discard(file, error);
        for (const [id, entry] of [...index]) if (entry.file === file) index.delete(id);
      }
    }
    return out;
  }

  /** Writes features [hidden] by id as one new shard (atomically); ids already on disk are skipped. */
  save(features: Map<string, Tensor>): void {
    const index = this.#shards();
    const fresh = [...features].filter(([id]) => !index.has(id));
    if (fresh.length === 0) return;
    mkdirSync(this.folder, { recursive: true });
    const identityFile = join(this.folder, "identity.json");
    if (!existsSync(identityFile)) writeFileAtomically(identityFile, JSON.stringify({ format: FEATURE_CACHE_FORMAT, identity: this.identity }, null, 2) + "\n");
    const ids = fresh.map(([id]) => id);
    const file = join(this.folder, `features-${sha256(ids.join("\n"))}.safetensors`);
    tidy(() => {
      const rows = stack(fresh.map(([, t]) => t)).float().cpu().contiguous();
      writeSafetensors(file, new Map([[FEATURES, rows]]), { format: "pt", samples: ids.join("\n"), sha256: tensorDigest(rows) });
    });
    ids.forEach((id, row) => index.set(id, { file, row }));
  }

  /** Saves the remembered file hashes. */
  flush(): void {
    this.hasher.flush();
  }
}

// A temporary file of a run that died before renaming it (see temporaryPath).
function removeIfOrphaned(path: string): void {
  const pid = temporaryWriterPid(path);
  if (pid === null || pid === process.pid || processAlive(pid)) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

function shardIds(shard: SafetensorsFile): string[] {
  const text = shard.metadata.samples;
  if (typeof text !== "string") throw new Error("it lists no sample ids");
  const ids = text === "" ? [] : text.split("\n");
  const info = shard.info(FEATURES);
  if (info.shape.length !== 2 || info.shape[0] !== ids.length) throw new Error(`its features are [${info.shape}] for ${ids.length} sample ids`);
  if (typeof shard.metadata.sha256 !== "string") throw new Error("it has no checksum");
  return ids;
}

/** sha256 of a tensor's elements as stored (CPU copy). */
export function tensorDigest(t: Tensor): string {
  const data = t.data();
  return sha256(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}
