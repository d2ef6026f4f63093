// Samples of the visual tasks and a DataSource over them: a sample's images are decoded on first use, so a sample
// whose features are cached is never decoded.
import type { Batch, DataSource } from "../train/index.js";
import type { RgbImage } from "../data/image.js";
import type { ChatMessage } from "../data/conversations.js";
import type { LabeledRecord } from "../data/records.js";
import type { MediaCache } from "../data/media.js";

/** One sample: its images (a video's frames) and its class (-1 when it has none). */
export interface VisualSample {
  /** Identifies the sample across epochs (its record source, "file:line"). */
  key: string;
  images: RgbImage[];
  labelIndex: number;
  /** The files the images come from (image files, or a video): the sample's id in a FeatureCache. */
  media?: string[];
}

/** A conversation sample: messages with one image placeholder per image. */
export interface ConversationSample extends VisualSample {
  messages: ChatMessage[];
}

export interface SampleBatch<S extends VisualSample = VisualSample> extends Batch {
  samples: S[];
}

/** A DataSource over samples made on demand by index. */
export class SampleSource<S extends VisualSample = VisualSample> implements DataSource<SampleBatch<S>> {
  constructor(
    readonly count: number,
    readonly sample: (index: number) => S,
  ) {}

  /** A source over samples already in memory. */
  static of<S extends VisualSample>(samples: S[]): SampleSource<S> {
    return new SampleSource(samples.length, (i) => samples[i]);
  }

  get length(): number {
    return this.count;
  }

  batch(indices: number[]): SampleBatch<S> {
    return { size: indices.length, samples: indices.map((i) => this.sample(i)) };
  }
}

/** Samples of labeled records, decoded on first use only (a sample whose features are cached is never decoded). */
export function labeledSamples(records: LabeledRecord[], media: MediaCache): SampleSource {
  return new SampleSource(records.length, (i) => {
    const record = records[i];
    return { key: record.source, get images() { return media.get(record); }, labelIndex: record.labelIndex, media: record.video ? [record.video] : record.images };
  });
}

/** The data in order, batchSize samples at a time. */
export function* batchesOf<S extends VisualSample>(data: DataSource<SampleBatch<S>>, batchSize: number): Generator<SampleBatch<S>> {
  for (let start = 0; start < data.length; start += batchSize) {
    const indices = Array.from({ length: Math.min(batchSize, data.length - start) }, (_, i) => start + i);
    yield data.batch(indices);
  }
}

/** Every sample of the data, in order. */
export function allSamples<S extends VisualSample>(data: DataSource<SampleBatch<S>>, batchSize = 64): S[] {
  const out: S[] = [];
  for (const batch of batchesOf(data, batchSize)) out.push(...batch.samples);
  return out;
}
