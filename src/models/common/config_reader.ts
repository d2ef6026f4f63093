// Typed reads of a Hugging Face config.json: unknown keys are tolerated (hub configs carry many), but a
// known key holding the wrong type is an error naming the key and the file, never a silent default.

export type JsonObject = Record<string, unknown>;

/** Largest accepted size of any dimension (int32's range, far above any real model's). */
export const MAX_SIZE = 2 ** 31 - 1;
/** Largest accepted layer count: the deepest released models have a few hundred layers. */
export const MAX_LAYERS = 10_000;

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return `an array (${JSON.stringify(value).slice(0, 60)})`;
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Reads keys of one JSON object (a config or a nested part of one) with type checks. `file` and `path`
 * only make error messages precise ("config.json: text_config.hidden_size must be ...").
 */
export class ConfigReader {
  constructor(
    readonly raw: JsonObject,
    readonly file = "config.json",
    readonly path = "",
  ) {}

  /** The key as the file spells it from the top ("text_config.hidden_size"), for error messages. */
  keyName(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  #fail(key: string, wanted: string, value: unknown): never {
    throw new Error(`${this.file}: "${this.keyName(key)}" must be ${wanted}, got ${describe(value)}; fix the value in ${this.file}`);
  }

  /** True when the key is present and not null (HF treats null as "use the default"). */
  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  int(key: string, fallback: number): number;
  int(key: string, fallback: null): number | null;
  int(key: string, fallback: number | null): number | null;
  int(key: string, fallback: number | null): number | null {
    if (!this.has(key)) return fallback;
    const value = this.raw[key];
    if (typeof value !== "number" || !Number.isInteger(value)) this.#fail(key, "an integer", value);
    return value;
  }

  /**
   * A positive integer (sizes, counts), at most `max` (default 2^31 - 1: no real model has a larger
   * dimension, and a larger one is a typo that would otherwise reach the allocator). An explicit null is
   * an error unless `nullable`: transformers passes null on as None, which only some keys accept (those
   * it derives, such as head_dim); for the others it fails, so must we rather than use the default.
   */
  size(key: string, fallback: number, options: { max?: number; nullable?: boolean } = {}): number {
    if (this.raw[key] === null && !options.nullable) this.#fail(key, "a positive integer (null is not a size; remove the key to use the default)", null);
    const value = this.int(key, fallback);
    if (value <= 0) this.#fail(key, "a positive integer", value);
    const max = options.max ?? MAX_SIZE;
    if (value > max) this.#fail(key, `a positive integer of at most ${max}`, value);
    return value;
  }

  /** A layer count: a positive integer of at most MAX_LAYERS (each layer is a tree of modules in memory). */
  layers(key: string, fallback: number): number {
    return this.size(key, fallback, { max: MAX_LAYERS });
  }

  float(key: string, fallback: number): number;
  float(key: string, fallback: null): number | null;
  float(key: string, fallback: number | null): number | null;
  float(key: string, fallback: number | null): number | null {
    if (!this.has(key)) return fallback;
    const value = this.raw[key];
    if (typeof value !== "number" || !Number.isFinite(value)) this.#fail(key, "a number", value);
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const value = this.raw[key];
    if (typeof value !== "boolean") this.#fail(key, "true or false", value);
    return value;
  }

  string(key: string, fallback: string): string;
  string(key: string, fallback: null): string | null;
  string(key: string, fallback: string | null): string | null;
  string(key: string, fallback: string | null): string | null {
    if (!this.has(key)) return fallback;
    const value = this.raw[key];
    if (typeof value !== "string") this.#fail(key, "a string", value);
    return value;
  }

  /** One of a fixed set of strings. */
  choice<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const value = this.string(key, fallback);
    if (!(choices as readonly string[]).includes(value)) this.#fail(key, `one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`, value);
    return value as T;
  }

  /** An integer or a list of integers (eos_token_id may be either), as a list; null when absent. */
  intOrIntList(key: string): number[] | null {
    if (!this.has(key)) return null;
    const value = this.raw[key];
    if (typeof value === "number" && Number.isInteger(value)) return [value];
    if (Array.isArray(value) && value.every((v) => typeof v === "number" && Number.isInteger(v))) return value as number[];
    this.#fail(key, "an integer or a list of integers", value);
  }

  stringList(key: string): string[] | null {
    if (!this.has(key)) return null;
    const value = this.raw[key];
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) this.#fail(key, "a list of strings", value);
    return value as string[];
  }

  numberList(key: string): number[] | null {
    if (!this.has(key)) return null;
    const value = this.raw[key];
    if (!Array.isArray(value) || !value.every((v) => typeof v === "number")) this.#fail(key, "a list of numbers", value);
    return value as number[];
  }

  /** A nested object as its own reader; null when absent. */
  object(key: string): ConfigReader | null {
    if (!this.has(key)) return null;
    const value = this.raw[key];
    if (!isJsonObject(value)) this.#fail(key, "an object", value);
    return new ConfigReader(value, this.file, this.keyName(key));
  }
}
