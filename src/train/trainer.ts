// The training loop: epochs or max steps, gradient accumulation, AdamW with parameter groups (no decay on biases
// and norms; every trainable parameter in exactly one group), warmup + schedule, clipping, bf16 autocast on
// CUDA, evaluation, best/last checkpoints written atomically, early stopping, a NaN/inf guard, metrics.jsonl,
// and exact resume (weights, optimizer, schedule, RNG, data order).
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Tensor, tidy, autocast, getRngState, setRngState, manualSeed, readSafetensors, writeSafetensors, dispose } from "../torch/index.js";
import { AdamW, Scheduler, clipGradNorm, scheduleByName, type ScheduleName } from "../torch/optim/index.js";
import type { Module, Parameter } from "../torch/nn/index.js";

export interface Batch {
  size: number;
}

export interface DataSource<B extends Batch = Batch> {
  length: number;
  batch(indices: number[]): B;
}

export interface TrainTask<B extends Batch = Batch> {
  /** Modules whose parameters with requiresGrad are optimized. */
  trainableModules(): Module[];
  /** Forward and loss of one batch; called inside tidy(). */
  loss(batch: B): { loss: Tensor; correct?: number; total?: number };
  evaluate(data: DataSource<B>, batchSize: number): Record<string, number>;
  /** The weights a checkpoint holds (adapters, head); live tensors. */
  checkpointTensors(): Map<string, Tensor>;
  loadCheckpointTensors(tensors: Map<string, Tensor>): void;
}

export interface ParamGroupRule {
  name: string;
  /** Regular expression over parameter names; the first rule that matches takes the parameter. */
  match: string;
  lr?: number;
  weightDecay?: number;
}

export interface TrainOptions {
  outputDir: string;
  batchSize: number;
  lr: number;
  epochs?: number;
  maxSteps?: number;
  gradAccumulation?: number;
  weightDecay?: number;
  warmupSteps?: number;
  warmupRatio?: number;
  schedule?: ScheduleName;
  maxGradNorm?: number;
  autocast?: "bf16" | "fp16" | null;
  device?: string;
  evalEvery?: "epoch" | number;
  bestMetric?: string;
  bestMode?: "max" | "min";
  earlyStoppingPatience?: number;
  seed?: number;
  resume?: boolean;
  nanGuard?: { maxConsecutive: number; lrFactor: number };
  paramGroups?: ParamGroupRule[];
  log?: (line: string) => void;
}

export interface TrainResult {
  steps: number;
  epochs: number;
  best: { metric: string; value: number; step: number } | null;
  stoppedEarly: boolean;
  skippedSteps: number;
}

interface TrainerState {
  step: number;
  epoch: number;
  /** Batches of the current epoch already consumed (optimizer micro-batches included). */
  batchInEpoch: number;
  bestValue: number | null;
  bestStep: number;
  badEvals: number;
  skippedSteps: number;
  consecutiveNonFinite: number;
}

/** mulberry32: a small seeded generator for the data order, independent of libtorch's RNG. */
function shuffled(n: number, seed: number): number[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Splits trainable parameters into groups: user rules first, then "decay" (dim >= 2) and "no_decay". */
export function buildParamGroups(modules: Module[], options: Pick<TrainOptions, "lr" | "weightDecay" | "paramGroups">) {
  const named: [string, Parameter][] = [];
  const seen = new Set<Parameter>();
  modules.forEach((m, i) => {
    for (const [name, p] of m.namedParameters()) {
      if (!p.requiresGrad || seen.has(p)) continue;
      seen.add(p);
      named.push([modules.length > 1 ? `${i}.${name}` : name, p]);
    }
  });
  if (named.length === 0) throw new Error("nothing to train: no trainable parameter in the task's modules");
  const rules = (options.paramGroups ?? []).map((r) => ({ ...r, re: new RegExp(r.match) }));
  const groups = new Map<string, { name: string; params: Tensor[]; lr: number; weightDecay: number; names: string[] }>();
  const add = (group: string, lr: number, wd: number, name: string, p: Parameter) => {
    if (!groups.has(group)) groups.set(group, { name: group, params: [], lr, weightDecay: wd, names: [] });
    groups.get(group)!.params.push(p);
    groups.get(group)!.names.push(name);
  };
  for (const [name, p] of named) {
    const rule = rules.find((r) => r.re.test(name));
    if (rule) add(rule.name, rule.lr ?? options.lr, rule.weightDecay ?? options.weightDecay ?? 0.01, name, p);
    else if (p.ndim >= 2) add("decay", options.lr, options.weightDecay ?? 0.01, name, p);
    else add("no_decay", options.lr, 0, name, p);
  }
  const assigned = [...groups.values()].reduce((n, g) => n + g.params.length, 0);
  if (assigned !== named.length) throw new Error(`internal: ${named.length - assigned} trainable parameters belong to no group`);
  return [...groups.values()];
}

export class Trainer<B extends Batch> {
  readonly optimizer: AdamW;
  readonly scheduler: Scheduler;
  readonly groups: ReturnType<typeof buildParamGroups>;
  private state: TrainerState = { step: 0, epoch: 0, batchInEpoch: 0, bestValue: null, bestStep: 0, badEvals: 0, skippedSteps: 0, consecutiveNonFinite: 0 };
  private readonly log: (line: string) => void;
  private readonly totalSteps: number;
  private readonly accumulation: number;

  constructor(
    private readonly task: TrainTask<B>,
    private readonly train: DataSource<B>,
    private readonly evalData: DataSource<B> | null,
    private readonly options: TrainOptions,
  ) {
    if (!(options.batchSize >= 1)) throw new Error(`batchSize must be >= 1, got ${options.batchSize}`);
    if (options.epochs === undefined && options.maxSteps === undefined) throw new Error("set epochs or maxSteps");
    if (train.length === 0) throw new Error("the training set is empty");
    this.log = options.log ?? ((line) => console.log(line));
    this.accumulation = options.gradAccumulation ?? 1;
    const stepsPerEpoch = Math.ceil(Math.ceil(train.length / options.batchSize) / this.accumulation);
    this.totalSteps = options.maxSteps ?? stepsPerEpoch * options.epochs!;
    this.groups = buildParamGroups(task.trainableModules(), options);
    this.optimizer = new AdamW(this.groups.map((g) => ({ params: g.params, lr: g.lr, weightDecay: g.weightDecay, name: g.name })), { lr: options.lr });
    const warmupSteps = options.warmupSteps ?? Math.round((options.warmupRatio ?? 0) * this.totalSteps);
    this.scheduler = new Scheduler(this.optimizer, scheduleByName(options.schedule ?? "cosine", { warmupSteps, trainingSteps: this.totalSteps }));
  }

  private checkpointDir(which: "best" | "last"): string {
    return join(this.options.outputDir, "checkpoints", which);
  }

  /** Writes the checkpoint into a temporary folder and renames it into place: never half-written. */
  private saveCheckpoint(which: "best" | "last"): void {
    const dir = this.checkpointDir(which);
    const staging = `${dir}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    const optimizerState = this.optimizer.stateDict();
    try {
      writeSafetensors(join(staging, "model.safetensors"), this.task.checkpointTensors());
      writeSafetensors(join(staging, "optimizer.safetensors"), optimizerState.tensors);
      writeFileSync(join(staging, "optimizer.json"), JSON.stringify(optimizerState.meta));
      writeFileSync(join(staging, "trainer_state.json"), JSON.stringify({ ...this.state, scheduler: this.scheduler.stateDict() }, null, 2));
      writeFileSync(join(staging, "rng_cpu.bin"), getRngState("cpu"));
      rmSync(`${dir}.old`, { recursive: true, force: true });
      if (existsSync(dir)) renameSync(dir, `${dir}.old`);
      renameSync(staging, dir);
      rmSync(`${dir}.old`, { recursive: true, force: true });
    } catch (error) {
      rmSync(staging, { recursive: true, force: true });
      throw error;
    } finally {
      dispose(Object.values(optimizerState.tensors));
    }
  }

  private loadCheckpoint(dir: string): void {
    const weights = readSafetensors(join(dir, "model.safetensors"));
    const optimizerTensors = readSafetensors(join(dir, "optimizer.safetensors"));
    try {
      this.task.loadCheckpointTensors(weights);
      this.optimizer.loadStateDict({ tensors: Object.fromEntries(optimizerTensors), meta: JSON.parse(readFileSync(join(dir, "optimizer.json"), "utf8")) });
      const saved = JSON.parse(readFileSync(join(dir, "trainer_state.json"), "utf8"));
      this.scheduler.loadStateDict(saved.scheduler);
      delete saved.scheduler;
      this.state = saved;
      setRngState(readFileSync(join(dir, "rng_cpu.bin")), "cpu");
    } finally {
      dispose([...weights.values(), ...optimizerTensors.values()]);
    }
  }

  private record(entry: Record<string, unknown>): void {
    appendFileSync(join(this.options.outputDir, "metrics.jsonl"), JSON.stringify(entry) + "\n");
  }

  private evaluateNow(): boolean {
    if (!this.evalData) return false;
    const metrics = this.task.evaluate(this.evalData, this.options.batchSize);
    this.record({ step: this.state.step, epoch: this.state.epoch, eval: metrics });
    this.log(`eval @ step ${this.state.step}: ${Object.entries(metrics).map(([k, v]) => `${k} ${v.toFixed(4)}`).join("  ")}`);
    const metric = this.options.bestMetric ?? "accuracy";
    const value = metrics[metric];
    if (value === undefined) return false;
    const better = this.state.bestValue === null || ((this.options.bestMode ?? "max") === "max" ? value > this.state.bestValue : value < this.state.bestValue);
    if (better) {
      this.state.bestValue = value;
      this.state.bestStep = this.state.step;
      this.state.badEvals = 0;
      this.saveCheckpoint("best");
    } else {
      this.state.badEvals++;
    }
    const patience = this.options.earlyStoppingPatience;
    return patience !== undefined && this.state.badEvals >= patience;
  }

  /** One optimizer step over `accumulation` micro-batches; returns the mean loss, or null when skipped. */
  private optimizerStep(microBatches: number[][]): number | null {
    const device = this.options.device ?? "cpu";
    let lossSum = 0;
    let finite = true;
    for (const indices of microBatches) {
      const value = tidy(() => {
        const run = () => this.task.loss(this.train.batch(indices));
        const { loss } = this.options.autocast && device.startsWith("cuda") ? autocast("cuda", this.options.autocast === "bf16" ? "bfloat16" : "float16", run) : run();
        const v = loss.item();
        if (Number.isFinite(v)) loss.div(microBatches.length).backward();
        return v;
      });
      if (!Number.isFinite(value)) finite = false;
      lossSum += value;
    }
    const params = this.groups.flatMap((g) => g.params);
    if (!finite) {
      this.optimizer.zeroGrad();
      const guard = this.options.nanGuard ?? { maxConsecutive: 5, lrFactor: 0.5 };
      this.state.consecutiveNonFinite++;
      this.state.skippedSteps++;
      this.scheduler.scaleBaseLrs(guard.lrFactor);
      this.log(`warning: non-finite loss at step ${this.state.step + 1}; step skipped, lr multiplied by ${guard.lrFactor}`);
      if (this.state.consecutiveNonFinite >= guard.maxConsecutive) {
        throw new Error(`training stopped: ${this.state.consecutiveNonFinite} non-finite losses in a row (last at step ${this.state.step + 1}); lower the learning rate or check the data`);
      }
      return null;
    }
    this.state.consecutiveNonFinite = 0;
    if (this.options.maxGradNorm) tidy(() => { clipGradNorm(params, this.options.maxGradNorm!); });
    this.optimizer.step();
    this.optimizer.zeroGrad();
    this.scheduler.step();
    return lossSum / microBatches.length;
  }

  async fit(): Promise<TrainResult> {
    const { outputDir, batchSize } = this.options;
    mkdirSync(outputDir, { recursive: true });
    writeFileSync(join(outputDir, "config.json"), JSON.stringify({ ...this.options, log: undefined }, null, 2));
    const last = this.checkpointDir("last");
    if (this.options.resume && existsSync(join(last, "trainer_state.json"))) {
      this.loadCheckpoint(last);
      this.log(`resumed from ${last} at step ${this.state.step}`);
    } else {
      manualSeed(this.options.seed ?? 0);
    }
    const seed = this.options.seed ?? 0;
    const batchesPerEpoch = Math.ceil(this.train.length / batchSize);
    const maxEpochs = this.options.epochs ?? Number.POSITIVE_INFINITY;
    let stoppedEarly = false;
    while (this.state.step < this.totalSteps && this.state.epoch < maxEpochs && !stoppedEarly) {
      const order = shuffled(this.train.length, seed * 1000003 + this.state.epoch);
      while (this.state.batchInEpoch < batchesPerEpoch && this.state.step < this.totalSteps) {
        const micro: number[][] = [];
        for (let k = 0; k < this.accumulation && this.state.batchInEpoch + k < batchesPerEpoch; k++) {
          const start = (this.state.batchInEpoch + k) * batchSize;
          micro.push(order.slice(start, start + batchSize));
        }
        const started = Date.now();
        const loss = this.optimizerStep(micro);
        this.state.batchInEpoch += micro.length;
        this.state.step++;
        const samples = micro.reduce((n, m) => n + m.length, 0);
        const lr = this.optimizer.paramGroups[0].lr;
        this.record({ step: this.state.step, epoch: this.state.epoch, loss, lr, samplesPerSecond: samples / Math.max(1e-3, (Date.now() - started) / 1000) });
        if (this.state.step % 10 === 0 || this.state.step === this.totalSteps) this.log(`step ${this.state.step}/${this.totalSteps}  loss ${loss === null ? "skipped" : loss.toFixed(4)}  lr ${lr.toExponential(2)}`);
        if (typeof this.options.evalEvery === "number" && this.state.step % this.options.evalEvery === 0) stoppedEarly = this.evaluateNow();
        this.saveCheckpoint("last");
        if (stoppedEarly) break;
      }
      if (this.state.batchInEpoch >= batchesPerEpoch) {
        this.state.epoch++;
        this.state.batchInEpoch = 0;
        if ((this.options.evalEvery ?? "epoch") === "epoch" && !stoppedEarly) stoppedEarly = this.evaluateNow();
        this.saveCheckpoint("last");
      }
    }
    const best = this.state.bestValue === null ? null : { metric: this.options.bestMetric ?? "accuracy", value: this.state.bestValue, step: this.state.bestStep };
    return { steps: this.state.step, epochs: this.state.epoch, best, stoppedEarly, skippedSteps: this.state.skippedSteps };
  }
}
