// Learning-rate schedules with linear warmup from 0, the formulas of transformers' optimization.py
// (get_constant_schedule_with_warmup, get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup,
// get_cosine_with_min_lr_schedule_with_warmup), and a Scheduler that applies one to an optimizer's groups
// as torch.optim.lr_scheduler.LambdaLR does: lr = base lr * factor(step).

/** A multiplier of the base learning rate for each optimizer step (0 = the first step). */
export interface LRSchedule {
  /** "constant", "linear", "cosine": saved with the scheduler state to catch a mismatched resume. */
  readonly name: string;
  lrAt(step: number): number;
}

export interface WarmupOptions {
  /** Steps over which the factor rises linearly from 0 (at step 0) towards 1 (default 0: no warmup). */
  warmupSteps?: number;
}
export interface DecayOptions extends WarmupOptions {
  /** Total number of optimizer steps; the decay reaches its end here. */
  trainingSteps: number;
}
export interface CosineOptions extends DecayOptions {
  /** Number of cosine waves over the decay (0.5: one half-wave from 1 down to minLrRatio). */
  numCycles?: number;
  /** Floor of the factor as a fraction of the base lr (transformers' min_lr_rate; default 0). */
  minLrRatio?: number;
}

function checkSteps(schedule: string, key: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new Error(`${schedule} schedule: ${key} must be an integer >= 0, got ${String(value)}`);
  }
  return value;
}

// Shared by every schedule: transformers' `float(current_step) / float(max(1, num_warmup_steps))`.
const warmupFactor = (step: number, warmupSteps: number) => step / Math.max(1, warmupSteps);

/** Factor 1 after a linear warmup (get_constant_schedule_with_warmup). */
export function constantSchedule(options: WarmupOptions = {}): LRSchedule {
  const warmupSteps = checkSteps("constant", "warmupSteps", options.warmupSteps ?? 0);
  return { name: "constant", lrAt: (step) => (step < warmupSteps ? warmupFactor(step, warmupSteps) : 1) };
}

/** Linear decay to 0 at trainingSteps after a linear warmup (get_linear_schedule_with_warmup). */
export function linearSchedule(options: DecayOptions): LRSchedule {
  const warmupSteps = checkSteps("linear", "warmupSteps", options.warmupSteps ?? 0);
  const trainingSteps = checkSteps("linear", "trainingSteps", options.trainingSteps);
  return {
    name: "linear",
    lrAt: (step) =>
      step < warmupSteps ? warmupFactor(step, warmupSteps) : Math.max(0, (trainingSteps - step) / Math.max(1, trainingSteps - warmupSteps)),
  };
}

/**
 * Cosine decay after a linear warmup (get_cosine_schedule_with_warmup; with minLrRatio > 0,
 * get_cosine_with_min_lr_schedule_with_warmup's min_lr_rate). Like transformers, the progress is not
 * clamped: past trainingSteps the cosine continues.
 */
export function cosineSchedule(options: CosineOptions): LRSchedule {
  const warmupSteps = checkSteps("cosine", "warmupSteps", options.warmupSteps ?? 0);
  const trainingSteps = checkSteps("cosine", "trainingSteps", options.trainingSteps);
  const numCycles = options.numCycles ?? 0.5;
  const minLrRatio = options.minLrRatio ?? 0;
  if (!Number.isFinite(numCycles)) throw new Error(`cosine schedule: numCycles must be a finite number, got ${numCycles}`);
  if (!(minLrRatio >= 0 && minLrRatio <= 1)) throw new Error(`cosine schedule: minLrRatio must be in [0, 1], got ${minLrRatio}`);
  return {
    name: "cosine",
    lrAt: (step) => {
      if (step < warmupSteps) return warmupFactor(step, warmupSteps);
      const progress = (step - warmupSteps) / Math.max(1, trainingSteps - warmupSteps);
      const factor = 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress));
      return Math.max(0, factor * (1 - minLrRatio) + minLrRatio);
    },
  };
}

export type ScheduleName = "constant" | "linear" | "cosine";

/** A schedule by name, for configs: `scheduleByName("cosine", { warmupSteps: 100, trainingSteps: 5000 })`. */
export function scheduleByName(name: ScheduleName, options: Partial<CosineOptions> = {}): LRSchedule {
  switch (name) {
    case "constant":
      return constantSchedule(options);
    case "linear":
      return linearSchedule(options as DecayOptions);
    case "cosine":
      return cosineSchedule(options as CosineOptions);
    default:
      throw new Error(`unknown learning-rate schedule '${String(name)}' (use constant, linear or cosine)`);
  }
}

/** What a Scheduler saves: the step counter and the base learning rates (plain JSON). */
export interface SchedulerStateDict {
  schedule: string;
  step: number;
  baseLrs: number[];
}

/** Anything with parameter groups holding an lr (every Optimizer). */
export interface HasParamGroups {
  paramGroups: { lr: number }[];
}

/**
 * Sets each group's lr to baseLr * schedule.lrAt(step). The base lrs are the groups' lrs when the scheduler
 * is made; construction applies step 0 at once. Call step() after each optimizer.step(), as with LambdaLR.
 */
export class Scheduler {
  readonly optimizer: HasParamGroups;
  readonly schedule: LRSchedule;
  #baseLrs: number[];
  #step = 0;

  constructor(optimizer: HasParamGroups, schedule: LRSchedule) {
    this.optimizer = optimizer;
    this.schedule = schedule;
    this.#baseLrs = optimizer.paramGroups.map((group) => group.lr);
    this.apply();
  }

  /** Optimizer steps taken so far = the step whose factor is now applied. */
  get stepCount(): number {
    return this.#step;
  }
  get baseLrs(): number[] {
    return [...this.#baseLrs];
  }
  /** The learning rates now set on the groups. */
  get lastLrs(): number[] {
    return this.optimizer.paramGroups.map((group) => group.lr);
  }

  step(): void {
    this.#step++;
    this.apply();
  }

  /** Multiplies every base lr (e.g. after a non-finite loss) and applies the current step's factor to them. */
  scaleBaseLrs(factor: number): void {
    this.#baseLrs = this.#baseLrs.map((lr) => lr * factor);
    this.apply();
  }

  stateDict(): SchedulerStateDict {
    return { schedule: this.schedule.name, step: this.#step, baseLrs: [...this.#baseLrs] };
  }

  /** Restores the step counter and base lrs, and sets the groups' lrs for that step. */
  loadStateDict(state: SchedulerStateDict): void {
    const groups = this.optimizer.paramGroups.length;
    if (!state || !Number.isInteger(state.step) || state.step < 0 || !Array.isArray(state.baseLrs)) {
      throw new Error("Scheduler.loadStateDict: expected { schedule, step, baseLrs } as made by stateDict()");
    }
    if (state.schedule !== undefined && state.schedule !== this.schedule.name) {
      throw new Error(`Scheduler.loadStateDict: the state is of a '${state.schedule}' schedule, this scheduler runs '${this.schedule.name}'`);
    }
    if (state.baseLrs.length !== groups) {
      throw new Error(`Scheduler.loadStateDict: the state has ${state.baseLrs.length} base lrs, the optimizer has ${groups} param groups`);
    }
    this.#step = state.step;
    this.#baseLrs = [...state.baseLrs];
    this.apply();
  }

  private apply(): void {
    const factor = this.schedule.lrAt(this.#step);
    this.optimizer.paramGroups.forEach((group, i) => {
      group.lr = this.#baseLrs[i] * factor;
    });
  }
}
