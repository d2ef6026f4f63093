// Tensor-engine benchmarks, vlmkit side. bench/engine_torch.py runs the same work in PyTorch;
// bench/run_engine.sh runs both in one call and bench/compare.mjs prints the ratios (see BENCHMARKS.md).
// Prints one JSON line per result: {"bench": name, "impl": "vlmkit", ...figures}.
import * as torch from "../src/index.js";

const { tidy, cuda, F } = torch;
const device = process.env.BENCH_DEVICE ?? "cuda";
const only = process.argv[2];

function seconds(fn: () => void, iterations: number): number {
  cuda.synchronize();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  cuda.synchronize();
  return Number(process.hrtime.bigint() - start) / 1e9 / iterations;
}

function report(bench: string, figures: Record<string, number | string>): void {
  console.log(JSON.stringify({ bench, impl: "vlmkit", ...figures }));
}

// (a) bf16 8192x8192 matmul
function matmul(): void {
  const n = 8192;
  const a = torch.randn([n, n], { dtype: "bf16", device });
  const b = torch.randn([n, n], { dtype: "bf16", device });
  for (let i = 0; i < 3; i++) tidy(() => a.matmul(b));
  const t = seconds(() => tidy(() => { a.matmul(b); }), 20);
  report("matmul_bf16_8192", { seconds: t, tflops: (2 * n ** 3) / t / 1e12 });
  a.dispose();
  b.dispose();
}

// (b) a chain of 10,000 small elementwise ops on a 64-element tensor: per-op overhead, on the GPU
// (kernel launches) and on the CPU (where the binding's own cost is most visible).
function smallOps(): void {
  smallOpsOn(device);
  smallOpsOn("cpu");
}
function smallOpsOn(device: string): void {
  const x0 = torch.randn([64], { device });
  const chain = (steps: number) => tidy(() => {
    let x = x0;
    for (let i = 0; i < steps; i++) {
      const next = i % 2 === 0 ? x.mul(1.0001) : x.add(0.0001);
      if (x !== x0) x.dispose();
      x = next;
    }
    return x;
  });
  chain(1000).dispose();
  const t = seconds(() => { chain(10_000).dispose(); }, 5);
  report(`small_ops_chain_10k_${device.split(":")[0]}`, { seconds: t, usPerOp: (t / 10_000) * 1e6 });
  x0.dispose();
}

// (c) training steps/s of a 4-layer MLP (1024 wide, batch 256, AdamW, fp32)
function mlp(): void {
  const { nn, optim } = torch as unknown as {
    nn: { Sequential: new (m: unknown[]) => any; Linear: new (i: number, o: number, opts?: object) => any; ReLU: new () => any };
    optim: { AdamW: new (params: unknown[], opts?: object) => any };
  };
  const width = 1024, batch = 256;
  const layers: unknown[] = [];
  for (let i = 0; i < 4; i++) {
    layers.push(new nn.Linear(width, width, { device }));
    if (i < 3) layers.push(new nn.ReLU());
  }
  const model = new nn.Sequential(layers);
  const opt = new optim.AdamW(model.parameters(), { lr: 1e-4 });
  const x = torch.randn([batch, width], { device });
  const y = torch.randn([batch, width], { device });
  const step = () => tidy(() => {
    const loss = F.mseLoss(model.forward(x), y);
    loss.backward();
    opt.step();
    opt.zeroGrad();
  });
  for (let i = 0; i < 10; i++) step();
  const t = seconds(step, 200);
  report("mlp4_train_step", { seconds: t, stepsPerSecond: 1 / t });
}

// (d) flash SDPA forward + backward, [8, 16, 2048, 128] bf16, causal
function sdpa(): void {
  const shape = [8, 16, 2048, 128];
  const q = torch.randn(shape, { dtype: "bf16", device, requiresGrad: true });
  const k = torch.randn(shape, { dtype: "bf16", device, requiresGrad: true });
  const v = torch.randn(shape, { dtype: "bf16", device, requiresGrad: true });
  const grad = torch.randn(shape, { dtype: "bf16", device });
  const step = () => tidy(() => {
    const out = F.scaledDotProductAttention(q, k, v, { isCausal: true });
    out.backward(grad);
    q.zeroGrad(); k.zeroGrad(); v.zeroGrad();
  });
  for (let i = 0; i < 5; i++) step();
  const t = seconds(step, 30);
  // causal attention: half of the 4*B*H*L*L*D forward flops, backward 2.5x forward
  const flops = 0.5 * 4 * 8 * 16 * 2048 * 2048 * 128 * 3.5;
  report("sdpa_flash_fwd_bwd", { seconds: t, tflops: flops / t / 1e12 });
}

const benches: Record<string, () => void> = { matmul, smallOps, mlp, sdpa };
for (const [name, fn] of Object.entries(benches)) if (!only || only === name) fn();
