"""Tensor-engine benchmarks, PyTorch eager side: the same work as bench/engine.ts."""
import json
import sys
import time

import torch
import torch.nn.functional as F

device = "cuda"
only = sys.argv[1] if len(sys.argv) > 1 else None


def seconds(fn, iterations):
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iterations


def report(bench, impl="pytorch", **figures):
    print(json.dumps({"bench": bench, "impl": impl, **figures}), flush=True)


def matmul():
    n = 8192
    a = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    b = torch.randn(n, n, dtype=torch.bfloat16, device=device)
    for _ in range(3):
        a @ b
    t = seconds(lambda: a @ b, 20)
    report("matmul_bf16_8192", seconds=t, tflops=2 * n**3 / t / 1e12)


def small_ops():
    small_ops_on(device)
    small_ops_on("cpu")


def small_ops_on(device):
    x0 = torch.randn(64, device=device)

    def chain(steps):
        x = x0
        for i in range(steps):
            x = x.mul(1.0001) if i % 2 == 0 else x.add(0.0001)
        return x

    chain(1000)
    t = seconds(lambda: chain(10_000), 5)
    report(f"small_ops_chain_10k_{device}", seconds=t, usPerOp=t / 10_000 * 1e6)


def mlp():
    width, batch = 1024, 256
    layers = []
    for i in range(4):
        layers.append(torch.nn.Linear(width, width))
        if i < 3:
            layers.append(torch.nn.ReLU())
    x = torch.randn(batch, width, device=device)
    y = torch.randn(batch, width, device=device)
    for impl, kwargs in (("pytorch", {}), ("pytorch-fused-adamw", {"fused": True})):
        model = torch.nn.Sequential(*layers).to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **kwargs)

        def step():
            loss = F.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()

        for _ in range(10):
            step()
        t = seconds(step, 200)
        report("mlp4_train_step", impl=impl, seconds=t, stepsPerSecond=1 / t)


def sdpa():
    shape = (8, 16, 2048, 128)
    q, k, v = (torch.randn(shape, dtype=torch.bfloat16, device=device, requires_grad=True) for _ in range(3))
    grad = torch.randn(shape, dtype=torch.bfloat16, device=device)

    def step():
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.backward(grad)
        q.grad = k.grad = v.grad = None

    for _ in range(5):
        step()
    t = seconds(step, 30)
    flops = 0.5 * 4 * 8 * 16 * 2048 * 2048 * 128 * 3.5
    report("sdpa_flash_fwd_bwd", seconds=t, tflops=flops / t / 1e12)


for name, fn in (("matmul", matmul), ("smallOps", small_ops), ("mlp", mlp), ("sdpa", sdpa)):
    if only is None or only == name:
        fn()
