// metrics.jsonl: one JSON object per line, one line per logged training step and per evaluation.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { writeFileDurably } from "./checkpoint.js";

/** A line of metrics.jsonl: `type` says what it records ("train", "eval", "skip"), `step` the optimizer step. */
export interface MetricsRecord {
  type: string;
  step: number;
  [key: string]: unknown;
}

// JSON has no NaN / Infinity: write them as strings so a reader sees what happened instead of null.
function replaceNonFinite(_key: string, value: unknown): unknown {
  return typeof value === "number" && !Number.isFinite(value) ? String(value) : value;
}

export class MetricsLog {
  readonly path: string;

  /**
   * Opens path for appending. With keepUpToStep (a resumed run), lines of later steps, written by the interrupted
   * run after its last checkpoint, are dropped first, so each step appears once.
   */
  constructor(path: string, options: { keepUpToStep?: number } = {}) {
    this.path = path;
    if (options.keepUpToStep !== undefined && existsSync(path)) {
      const kept = readFileSync(path, "utf8")
        .split("\n")
        .filter((line) => {
          if (line.trim() === "") return false;
          try {
            const step = (JSON.parse(line) as { step?: unknown }).step;
            return !(typeof step === "number" && step > options.keepUpToStep!);
          } catch {
            return false; // a line cut short by the crash
          }
        });
      writeFileDurably(path, kept.map((line) => line + "\n").join(""));
    }
  }

  write(record: MetricsRecord): void {
    appendFileSync(this.path, JSON.stringify(record, replaceNonFinite) + "\n");
  }
}

/** Every record of a metrics.jsonl file. */
export function readMetrics(path: string): MetricsRecord[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line, i) => {
      try {
        return JSON.parse(line) as MetricsRecord;
      } catch (error) {
        throw new Error(`${path}:${i + 1}: not JSON: ${(error as Error).message}`);
      }
    });
}
