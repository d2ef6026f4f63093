// Reading a run's records: bad rows reported (or skipped with data.skip_bad), undecodable media found before
// training, the label map from the configuration.
import { resolve } from "node:path";
import { readLabelMap, type SkippedRecord } from "../data/records.js";
import { MediaError, type MediaCache, type MediaRecord } from "../data/media.js";
import type { RunConfig } from "./config.js";
import type { Log } from "./resolve.js";

/** data.labels: a list of class names, or the labels.json file it names; undefined when the run gives none. */
export function configuredLabels(config: RunConfig): string[] | undefined {
  const labels = config.data?.labels;
  if (labels === undefined) return undefined;
  return typeof labels === "string" ? readLabelMap(resolve(labels)) : labels;
}

/** Logs skipped records, the first 20 with their reasons. */
export function reportSkipped(skipped: Pick<SkippedRecord, "source" | "reason">[], log: Log): void {
  if (skipped.length === 0) return;
  log(`skipped ${skipped.length} bad record(s):`);
  for (const s of skipped.slice(0, 20)) log(`  ${s.source}: ${s.reason}`);
  if (skipped.length > 20) log(`  ... and ${skipped.length - 20} more`);
}

/**
 * With skip_bad, records whose media cannot be decoded are dropped and reported like other bad records (this
 * decodes every record's media up front, which MediaCache keeps for the epochs); without it they stay, and the
 * first one fails the run with an error naming its file:line.
 */
export function keepDecodable<R extends Partial<MediaRecord> & { source: string }>(records: R[], media: MediaCache, skipBad: boolean, log: Log): R[] {
  if (!skipBad) return records;
  const skipped: { source: string; reason: string }[] = [];
  const kept = records.filter((record) => {
    if (!record.images && !record.video) return true;
    try {
      media.get(record);
      return true;
    } catch (error) {
      if (!(error instanceof MediaError)) throw error;
      skipped.push({ source: record.source, reason: error.reason });
      return false;
    }
  });
  reportSkipped(skipped, log);
  return kept;
}

/** The first `max` records (data.max_train_samples / max_eval_samples), or all of them when max is unset. */
export function firstSamples<R>(records: R[], max: number | null | undefined): R[] {
  return max === null || max === undefined ? records : records.slice(0, max);
}
