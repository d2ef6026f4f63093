// Writing files so that a reader, or the next run after a crash, sees the old file or the new one whole.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";

/** Where a file or folder is written before it is renamed into place: `<path>.tmp-<pid>`. */
export function temporaryPath(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

/** The writer's pid when `path` is such a temporary, else null (so leftovers of dead processes can be removed). */
export function temporaryWriterPid(path: string): number | null {
  const pid = /\.tmp-(\d+)$/.exec(path)?.[1];
  return pid === undefined ? null : Number(pid);
}

/** Whether a process with this pid runs on this machine (a pid that is not a positive integer runs nothing). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

/** Writes a file and fsyncs it (inside a folder that is renamed into place, or as writeFileAtomically's temporary). */
export function writeFileDurably(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, "w");
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data, "utf8") : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes data to path through a temporary file, fsync and a rename; on failure the temporary is removed and path is untouched. */
export function writeFileAtomically(path: string, data: string | Uint8Array): void {
  const temporary = temporaryPath(path);
  try {
    writeFileDurably(temporary, data);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw new Error(`cannot write ${path}: ${(error as Error).message}`);
  }
}

/** Makes renames in a folder durable; some filesystems refuse fsync on a folder, which only costs durability. */
export function syncFolder(folder: string): void {
  try {
    const fd = openSync(folder, "r");
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // best effort
  }
}
