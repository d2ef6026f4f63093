// Explicit memory management: tidy scopes, keep, dispose, `using`, and a long training loop with flat memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { F, cuda, dispose, keep, liveTensorCount, noGrad, ones, tidy, zeros, type Tensor } from "../../src/torch/index.js";
import { DEVICE, ON_CUDA, assertClose, f64, f64Flat, randomF64, uniformArray } from "../helpers.js";

const on = { device: DEVICE };

test("liveTensorCount counts every native tensor, views included; dispose is idempotent", () => {
  const before = liveTensorCount();
  const a = zeros([4], on);
  const b = a.view(2, 2);
  assert.equal(liveTensorCount(), before + 2);
  a.dispose();
  assert.equal(a.isDisposed, true);
  assert.equal(liveTensorCount(), before + 1);
  a.dispose();
  a.dispose();
  assert.equal(liveTensorCount(), before + 1);
  // The view keeps the storage alive: it still reads after its base was disposed.
  assertClose(b, [[0, 0], [0, 0]]);
  dispose([b, { nested: [b] }]);
  assert.equal(liveTensorCount(), before);
  assert.equal(String(b), "Tensor(disposed)");
});

test("tidy frees everything created inside except what it returns", () => {
  const before = liveTensorCount();
  const result = tidy(() => {
    const x = ones([3], on);
    const y = x.mul(2).add(1);
    y.exp();
    return y.sum();
  });
  assert.equal(liveTensorCount(), before + 1);
  assert.equal(result.item(), 9);
  result.dispose();
  assert.equal(liveTensorCount(), before);
  // Inputs made outside are left alone.
  const outside = ones([2], on);
  tidy(() => {
    outside.add(1);
  });
  assert.equal(outside.isDisposed, false);
  assert.equal(liveTensorCount(), before + 1);
  outside.dispose();
  // Non-tensor results are returned as they are.
  assert.equal(tidy(() => ones([2], on).sum().item()), 2);
  assert.equal(liveTensorCount(), before);
});

test("tidy keeps tensors found in returned arrays, objects and Maps", () => {
  const before = liveTensorCount();
  const { pair, record, map } = tidy(() => {
    const a = ones([1], on);
    const b = a.add(1);
    const c = b.add(1);
    const d = c.add(1);
    a.add(100); // a temporary
    return { pair: [a, b], record: { inner: { c } }, map: new Map([["d", d]]) };
  });
  assert.equal(liveTensorCount(), before + 4);
  assert.deepEqual([pair[0].item(), pair[1].item(), record.inner.c.item(), map.get("d")!.item()], [1, 2, 3, 4]);
  dispose([pair, record, map]);
  assert.equal(liveTensorCount(), before);
});

test("nested tidy: an inner result moves to the outer scope and is freed there unless returned", () => {
  const before = liveTensorCount();
  let innerResult: Tensor | undefined;
  const outer = tidy(() => {
    innerResult = tidy(() => {
      const t = ones([2], on).mul(3);
      t.add(1);
      return t;
    });
    assert.equal(liveTensorCount(), before + 1);
    const kept = tidy(() => innerResult!.add(1));
    return kept;
  });
  assert.equal(innerResult!.isDisposed, true);
  assert.equal(outer.isDisposed, false);
  assertClose(outer, [4, 4]);
  assert.equal(liveTensorCount(), before + 1);
  outer.dispose();
  assert.equal(liveTensorCount(), before);
});

test("keep() survives every enclosing tidy; an exception inside tidy still frees", () => {
  const before = liveTensorCount();
  let weight: Tensor | undefined;
  tidy(() => {
    tidy(() => {
      weight = keep(ones([2], on));
      ones([5], on);
    });
  });
  assert.equal(weight!.isDisposed, false);
  assert.equal(liveTensorCount(), before + 1);
  const list = tidy(() => keep([zeros([1], on), zeros([1], on)]));
  assert.equal(liveTensorCount(), before + 3);
  dispose([weight, list]);
  assert.equal(liveTensorCount(), before);

  let leaked: Tensor | undefined;
  assert.throws(
    () =>
      tidy(() => {
        leaked = ones([8], on).mul(2);
        tidy(() => {
          ones([8], on);
          throw new Error("failure inside nested tidy");
        });
      }),
    /failure inside nested tidy/,
  );
  assert.equal(leaked!.isDisposed, true);
  assert.equal(liveTensorCount(), before);
  // An op error inside tidy (native exception) frees the same way.
  assert.throws(() => tidy(() => ones([2, 3], on).matmul(ones([2, 3], on))), /matmul/);
  assert.equal(liveTensorCount(), before);
  assert.throws(() => tidy((async () => ones([1], on)) as unknown as () => Tensor), /synchronous/);
});

test("`using` disposes at the end of the block, also when it throws", () => {
  const before = liveTensorCount();
  let escaped: Tensor | undefined;
  {
    using t = ones([4], on);
    using doubled = t.mul(2);
    escaped = t;
    assert.equal(doubled.sum().item(), 8);
  }
  assert.equal(escaped.isDisposed, true);
  // doubled.sum() above was not scoped; free it through the count check below.
  assert.equal(liveTensorCount(), before + 1);
  dispose(escaped);
  const afterBlock = liveTensorCount();
  assert.throws(() => {
    using t = zeros([3], on);
    escaped = t;
    throw new Error("inside using block");
  }, /inside using block/);
  assert.equal(escaped.isDisposed, true);
  assert.equal(liveTensorCount(), afterBlock);
});

test("3000 SGD steps of a tiny MLP keep liveTensorCount flat", () => {
  const x = keep(f64Flat(uniformArray(16 * 4, 200), [16, 4]));
  // A smooth target so the loss can go down: y = sin(x0) + x1 * x2 - x3 / 2.
  const inputs = uniformArray(16 * 4, 200);
  const y = keep(f64Flat(Array.from({ length: 16 }, (_, i) => Math.sin(inputs[i * 4]) + inputs[i * 4 + 1] * inputs[i * 4 + 2] - inputs[i * 4 + 3] / 2), [16, 1]));
  const params = keep([
    randomF64([8, 4], 201, -0.5, 0.5, { requiresGrad: true }),
    randomF64([8], 202, -0.1, 0.1, { requiresGrad: true }),
    randomF64([1, 8], 203, -0.5, 0.5, { requiresGrad: true }),
    randomF64([1], 204, -0.1, 0.1, { requiresGrad: true }),
  ]);
  const [w1, b1, w2, b2] = params;
  const learningRate = 0.1;
  const step = (): number =>
    tidy(() => {
      const hidden = F.linear(x, w1, b1).tanh();
      const loss = F.mseLoss(F.linear(hidden, w2, b2), y);
      loss.backward();
      noGrad(() => {
        for (const p of params) {
          p.copy_(p.sub(p.grad!.mul(learningRate)));
          p.zeroGrad();
        }
      });
      return loss.item();
    });
  const firstLoss = step();
  let countAt100 = -1;
  let cudaBytesAt100 = -1;
  let lastLoss = firstLoss;
  for (let i = 2; i <= 3000; i++) {
    lastLoss = step();
    if (i === 100) {
      countAt100 = liveTensorCount();
      if (ON_CUDA) cudaBytesAt100 = cuda.memoryAllocated();
    }
  }
  assert.equal(liveTensorCount(), countAt100, "live tensors after step 3000 equal those after step 100");
  if (ON_CUDA) assert.equal(cuda.memoryAllocated(), cudaBytesAt100, "CUDA bytes allocated stay flat");
  assert.ok(lastLoss < firstLoss * 0.2, `training reduces the loss: ${firstLoss} -> ${lastLoss}`);
  dispose([x, y, params]);
});

test("the gradient accessor returns a new handle each call, freed by tidy", () => {
  const w = f64([1, 2], { requiresGrad: true });
  w.mul(w).sum().backward();
  const before = liveTensorCount();
  tidy(() => {
    for (let i = 0; i < 10; i++) assertClose(w.grad!, [2, 4]);
  });
  assert.equal(liveTensorCount(), before);
  w.dispose();
});
