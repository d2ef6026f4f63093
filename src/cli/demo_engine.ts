// The engine demo: fits a small MLP classifier to generated 2-D spirals (three arms) on the CPU and reports
// held-out accuracy. It exercises creation, autograd, nn, AdamW with a cosine schedule and tidy().
import { AdamW, cosineSchedule, Scheduler, Linear, GELU, Sequential, F, tensor, tidy, noGrad, manualSeed, liveTensorCount, Tensor } from "../index.js";

interface SpiralData {
  points: Tensor;
  labels: Tensor;
}

/** Three interleaved spiral arms with noise, deterministic for a seed. */
export function makeSpirals(perClass: number, seed: number): SpiralData {
  let state = seed >>> 0;
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const points: number[][] = [];
  const labels: number[] = [];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < perClass; i++) {
      const r = i / perClass;
      const angle = c * ((2 * Math.PI) / 3) + r * 4 + (random() - 0.5) * 0.3;
      points.push([r * Math.cos(angle), r * Math.sin(angle)]);
      labels.push(c);
    }
  }
  return { points: tensor(points), labels: tensor(labels, { dtype: "int64" }) };
}

export function runEngineDemo(log: (line: string) => void = console.log): { accuracy: number } {
  manualSeed(0);
  const train = makeSpirals(300, 1);
  const test = makeSpirals(100, 2);
  const model = new Sequential([new Linear(2, 64), new GELU(), new Linear(64, 64), new GELU(), new Linear(64, 3)]);
  const steps = 600;
  const optimizer = new AdamW(model.parameters(), { lr: 1e-2, weightDecay: 1e-4 });
  const scheduler = new Scheduler(optimizer, cosineSchedule({ warmupSteps: 30, trainingSteps: steps }));
  const started = Date.now();
  for (let step = 1; step <= steps; step++) {
    const loss = tidy(() => {
      const loss = F.crossEntropy(model.forward(train.points), train.labels);
      loss.backward();
      optimizer.step();
      optimizer.zeroGrad();
      scheduler.step();
      return loss.item();
    });
    if (step % 100 === 0) log(`step ${step}/${steps}  loss ${loss.toFixed(4)}  live tensors ${liveTensorCount()}`);
  }
  model.eval();
  const accuracy = noGrad(() =>
    tidy(() => model.forward(test.points).argmax(-1).eq(test.labels).float().mean().item()),
  );
  log(`held-out accuracy ${(accuracy * 100).toFixed(1)}% on ${test.labels.shape[0]} points in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { accuracy };
}
