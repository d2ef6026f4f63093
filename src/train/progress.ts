// Console progress: a bar redrawn in place on a terminal, plain lines when the output is a file or a pipe.

export interface ProgressState {
  step: number;
  totalSteps: number;
  /** Fractional epoch (1.5 = half-way through the second). */
  epoch: number;
  loss?: number;
  accuracy?: number;
  lr: number;
  samplesPerSecond?: number;
  etaSeconds?: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** "loss 0.4123  acc 0.875  lr 2.00e-4  312.5 samples/s  ETA 0:41" */
export function formatProgressFields(state: ProgressState): string {
  const fields: string[] = [];
  if (state.loss !== undefined) fields.push(`loss ${state.loss.toFixed(4)}`);
  if (state.accuracy !== undefined) fields.push(`acc ${state.accuracy.toFixed(3)}`);
  fields.push(`lr ${state.lr.toExponential(2)}`);
  if (state.samplesPerSecond !== undefined) fields.push(`${state.samplesPerSecond.toFixed(1)} samples/s`);
  if (state.etaSeconds !== undefined) fields.push(`ETA ${formatDuration(state.etaSeconds)}`);
  return fields.join("  ");
}

export interface ProgressOptions {
  /** Show the bar / periodic step lines (false: only events such as evaluations and warnings). */
  enabled: boolean;
  /** Where lines go; when given, no bar is drawn (tests, callers with their own log). */
  log?: (line: string) => void;
  /** The terminal (default process.stderr); the bar is drawn only when it is a TTY. */
  stream?: NodeJS.WriteStream;
}

export class ConsoleProgress {
  readonly #enabled: boolean;
  readonly #log: ((line: string) => void) | undefined;
  readonly #stream: NodeJS.WriteStream;
  readonly #tty: boolean;
  #barShown = false;
  #lastBar = "";

  constructor(options: ProgressOptions) {
    this.#enabled = options.enabled;
    this.#log = options.log;
    this.#stream = options.stream ?? process.stderr;
    this.#tty = !options.log && Boolean(this.#stream.isTTY);
  }

  get isTTY(): boolean {
    return this.#tty;
  }

  /** Redraws the bar (on a TTY) after each step; elsewhere nothing (step lines come through stepLine()). */
  update(state: ProgressState): void {
    if (!this.#enabled || !this.#tty) return;
    const width = 24;
    const done = state.totalSteps > 0 ? Math.min(1, state.step / state.totalSteps) : 0;
    const filled = Math.round(done * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const head = `epoch ${state.epoch.toFixed(2)} ${bar} ${state.step}/${state.totalSteps}`;
    const columns = this.#stream.columns ?? 120;
    let text = `${head}  ${formatProgressFields(state)}`;
    // on a narrow terminal the ETA moves next to the step count, so cutting the line keeps it
    if (text.length > columns - 1 && state.etaSeconds !== undefined) text = `${head}  ETA ${formatDuration(state.etaSeconds)}  ${formatProgressFields({ ...state, etaSeconds: undefined })}`;
    this.#lastBar = text.length > columns - 1 ? text.slice(0, columns - 1) : text;
    this.#stream.write(`\r\x1b[2K${this.#lastBar}`);
    this.#barShown = true;
  }

  /** A periodic step line: printed where there is no bar (a log file reads well line by line). */
  stepLine(state: ProgressState): void {
    if (!this.#enabled || this.#tty) return;
    this.line(`step ${state.step}/${state.totalSteps}  epoch ${state.epoch.toFixed(2)}  ${formatProgressFields(state)}`);
  }

  /** An event line (evaluation, checkpoint, warning): above the bar on a TTY, which is then redrawn. */
  line(text: string): void {
    if (this.#log) {
      this.#log(text);
      return;
    }
    if (this.#barShown) this.#stream.write("\r\x1b[2K");
    this.#stream.write(text + "\n");
    if (this.#barShown) this.#stream.write(this.#lastBar);
  }

  /** Ends the bar's line. */
  finish(): void {
    if (this.#barShown) this.#stream.write("\n");
    this.#barShown = false;
  }
}

/**
 * A bar for work over a known number of items outside the training loop (features cached, samples scored, answers
 * generated): "features ████░░ 120/1125  85.3/s  ETA 0:12" redrawn on a TTY; nothing elsewhere (callers log a summary).
 */
export class ItemProgress {
  readonly #started = performance.now();
  readonly #stream: NodeJS.WriteStream;
  readonly #shown: boolean;
  #done = 0;
  #drawn = false;

  constructor(
    readonly label: string,
    readonly total: number,
    options: { enabled?: boolean; stream?: NodeJS.WriteStream } = {},
  ) {
    this.#stream = options.stream ?? process.stderr;
    this.#shown = (options.enabled ?? true) && Boolean(this.#stream.isTTY) && total > 0;
  }

  advance(count = 1): void {
    this.#done = Math.min(this.total, this.#done + count);
    if (!this.#shown) return;
    const seconds = (performance.now() - this.#started) / 1000;
    const rate = seconds > 0 ? this.#done / seconds : 0;
    const width = 20;
    const filled = Math.round((this.#done / this.total) * width);
    const eta = rate > 0 ? formatDuration((this.total - this.#done) / rate) : "?";
    const text = `${this.label} ${"█".repeat(filled)}${"░".repeat(width - filled)} ${this.#done}/${this.total}  ETA ${eta}  ${rate.toFixed(1)}/s`;
    const columns = this.#stream.columns ?? 120;
    this.#stream.write(`\r\x1b[2K${text.length > columns - 1 ? text.slice(0, columns - 1) : text}`);
    this.#drawn = true;
  }

  /** Clears the bar's line. */
  finish(): void {
    if (this.#drawn) this.#stream.write("\r\x1b[2K");
    this.#drawn = false;
  }
}
