// Bad input never aborts the process: every mistake becomes a JS Error naming the op, and the next op works.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { F, arange, cat, fromBuffer, ones, tensor, zeros, type NestedArray, type Tensor } from "../../src/torch/index.js";
import { DEVICE, ON_CUDA, assertThrowsWith, f64, values } from "../helpers.js";

const on = { device: DEVICE };
// Out-of-range indices are checked on the host: on CUDA they trip a device-side assert that poisons the
// whole context, so the index errors below run on the CPU whatever the suite's device.
const cpu = { device: "cpu" };

/** Asserts that fn throws an Error naming `op` (as "op: ...") with the fragments, then that a fresh op still works. */
function assertOpError(op: string, fn: () => unknown, ...fragments: (string | RegExp)[]): void {
  const error = assertThrowsWith(fn, ...fragments);
  assert.ok(error.message.startsWith(`${op}: `) || error.message.startsWith(`${op}(`), `message names '${op}': ${JSON.stringify(error.message)}`);
  assert.deepEqual(values(ones([2], on).add(1)), [2, 2], "the next op works");
}

test("bad shapes", () => {
  assertOpError("matmul", () => ones([2, 3], on).matmul(ones([2, 3], on)), "cannot be multiplied", "2x3");
  assertOpError("mm", () => ones([2, 3], on).mm(ones([4, 2], on)));
  assertOpError("bmm", () => ones([2, 2, 3], on).bmm(ones([3, 3, 2], on)));
  assertOpError("view", () => ones([2, 3], on).view(4), "[4]", "invalid for input of size 6");
  assertOpError("view", () => ones([2, 3], on).transpose(0, 1).view(6), "reshape");
  assertOpError("reshape", () => ones([2, 3], on).reshape(-1, -1), "one dimension");
  assertOpError("add", () => ones([2, 3], on).add(ones([4], on)), "size of tensor");
  assertOpError("cat", () => cat([ones([2, 3], on), ones([2, 4], on)]), "Sizes of tensors must match");
  assertOpError("cat", () => cat([]), "non-empty");
  assertOpError("linear", () => F.linear(ones([2, 3], on), ones([4, 5], on)));
  assertOpError("conv2d", () => F.conv2d(ones([1, 3, 4, 4], on), ones([2, 2, 3, 3], on)), "channels");
  assertOpError("layerNorm", () => F.layerNorm(ones([2, 3], on), [4]), "normalized_shape");
  assertOpError("zeros", () => zeros([-1], on), "negative"); // 1.13: "negative dimension -1"; 2.x: "must be non-negative"
  assertOpError("interpolate", () => F.interpolate(ones([2, 2], on), { size: [3, 3] }), "4-d");
  assertOpError("scaledDotProductAttention", () => F.scaledDotProductAttention(ones([1, 2, 3, 4], on), ones([1, 3, 3, 4], on), ones([1, 3, 3, 4], on)), "multiple of key/value heads");
  assertOpError("fromBuffer", () => fromBuffer(new Float32Array(3), [2, 2], "float32"), "12 bytes", "needs 16");
  assertOpError("item", () => ones([2], on).item(), "one element");
  assertOpError("backward", () => ones([2], { ...on, requiresGrad: true }).mul(2).backward(), "scalar");
  assertOpError("setGrad", () => { const p = ones([3], { ...on, requiresGrad: true }); p.grad = ones([1], on); }, "must match");
});

test("bad dtypes", () => {
  assertOpError("embedding", () => F.embedding(ones([4, 2], on), tensor([0, 1], on)), /Long|Int/);
  assertOpError("gather", () => ones([3], on).gather(0, tensor([0, 1], on)), /int64|Long/);
  assertOpError("indexSelect", () => ones([3], on).indexSelect(0, tensor([0.5], on)));
  assertOpError("crossEntropy", () => F.crossEntropy(ones([2, 3], on), tensor([0, 1], on)));
  // libtorch 1.13 ignored a float mask without a word; the binding refuses any mask that is not bool.
  assertOpError("maskedFill", () => ones([2], on).maskedFill(tensor([1, 0], on), 0), "mask must be a bool tensor, got float32");
  assertOpError("maskedFill", () => ones([2], on).maskedFill(tensor([1, 0], { ...on, dtype: "uint8" }), 0), "got uint8");
  assertOpError("where", () => F.where(tensor([1, 0], on), ones([2], on), 0), /bool/);
  assertOpError("matmul", () => ones([2, 2], on).matmul(ones([2, 2], { ...on, dtype: "float64" })), /dtype|type/);
  assertOpError("setGrad", () => { const p = ones([3], { ...on, requiresGrad: true }); p.grad = ones([3], { ...on, dtype: "float64" }); }, "float64");
  assertOpError("setRequiresGrad", () => { arange(3, undefined, 1, on).requiresGrad = true; }, /floating point/);
  assertThrowsWith(() => zeros([2], { ...on, dtype: "float8" as never }), "unknown dtype 'float8'");
});

test("bad device strings", () => {
  assertOpError("zeros", () => zeros([2], { device: "tpu" }), "tpu");
  assertOpError("to", () => ones([2], on).to("tpu"), "'tpu' is neither a dtype", "nor a device");
  assertOpError("to", () => ones([2], on).to("cuda:7"), "cuda:7");
  assertOpError("zeros", () => zeros([2], { device: "cuda:7" }), "cuda:7");
  assertOpError("ones", () => ones([2], { device: "cuda:-1" }), "cuda:-1");
  assertOpError("ones", () => ones([2], { device: "gpu" }), "gpu");
});

test("out-of-range indices (checked on the CPU)", () => {
  const m = arange(12, undefined, 1, { ...cpu, dtype: "float64" }).view(3, 4);
  const index = (v: NestedArray<number>) => tensor(v, { ...cpu, dtype: "int64" });
  assertOpError("indexSelect", () => m.indexSelect(0, index([0, 3])), "out of range");
  assertOpError("indexSelect", () => m.indexSelect(1, index([-5])), /out of range|out of DATA bounds/);
  assertOpError("gather", () => m.gather(1, index([[0, 4]])), "index 4 is out of bounds for dimension 1 with size 4");
  assertOpError("narrow", () => m.narrow(1, 2, 3), /exceeds dimension size|out of range/);
  assertOpError("narrow", () => m.narrow(2, 0, 1), /Dimension out of range|dim/);
  assertOpError("select", () => m.select(0, 3), "out of range");
  assertOpError("embedding", () => F.embedding(ones([5, 2], cpu), index([1, 5])), "out of range");
  assertOpError("embedding", () => F.embedding(ones([5, 2], cpu), index([-1])), "out of range");
  assertOpError("scatter", () => zeros([3], cpu).scatter(0, index([9]), 1), "out of bounds");
  assertOpError("index", () => m.index([index([3])]), "out of bounds");
  assertOpError("crossEntropy", () => F.crossEntropy(ones([2, 3], cpu), index([0, 7])), "out of bounds");
  assertOpError("sum", () => m.sum(5), "Dimension out of range");
  assertOpError("transpose", () => m.transpose(0, 2), "Dimension out of range");
});

test("use of a disposed tensor names the op", () => {
  const t = ones([2], on);
  const other = ones([2], on);
  t.dispose();
  assertOpError("add", () => t.add(1), "tensor argument 0 was disposed");
  assertOpError("add", () => other.add(t), "tensor argument 1 was disposed");
  assertOpError("matmul", () => F.matmul(other.view(1, 2), t), "tensor argument 1 was disposed");
  assertOpError("cat", () => cat([other, t]), "tensor 1 of argument 0 was disposed");
  assertOpError("dtype", () => t.toArray(), "was disposed");
  assertOpError("shape", () => t.shape, "was disposed");
  assertOpError("reshape", () => t.reshape(2), "was disposed");
  assert.deepEqual(values(other), [1, 1]);
});

test("wrong argument types", () => {
  const t = ones([2, 3], on);
  assertOpError("add", () => t.add("1" as never), "argument 1 must be a number or a boolean");
  assertOpError("view", () => t.view("6" as never), "argument 1[0] must be an integer");
  assertOpError("pad", () => F.pad(t, "1" as never), "must be an array of integers");
  assertOpError("view", () => t.view(2.5, 2), "must be an integer");
  assertOpError("zeros", () => zeros([2.5], on), "argument 0[0] must be an integer");
  assertOpError("clamp", () => t.clamp("0" as never, 1), "must be a number or a boolean");
  assertOpError("clamp", () => t.clamp(), "min, a max, or both");
  assertOpError("linear", () => F.linear(t, 5 as never), "tensor argument 1 is not a tensor");
  assertOpError("narrow", () => t.narrow(1, Number.NaN, 1), "must be an integer");
  assertOpError("layerNorm", () => F.layerNorm(t, [3], null, null, "x" as never), "must be a number");
  assertOpError("gelu", () => F.gelu(t, "fast" as never), "'none' or 'tanh'");
  assertOpError("crossEntropy", () => F.crossEntropy(t, arange(2, undefined, 1, on), { reduction: "avg" as never }), "reduction must be");
  assertOpError("pad", () => F.pad(t.view(1, 2, 3), [1, 1], "circular" as never), "unsupported pad mode");
  assertOpError("interpolate", () => F.interpolate(t.view(1, 1, 2, 3), { size: [4, 4], mode: "area" as never }), "unsupported interpolate mode");
  assertOpError("index", () => t.index({ length: 1, map: () => 5 } as never), "must be an array");
  assertThrowsWith(() => F.dropout(t, 2, true), "dropout probability");
});

test("errors inside autograd are errors too", () => {
  const x = f64([1, 2], { requiresGrad: true });
  const y = x.mul(x).sum();
  y.backward();
  assertOpError("backward", () => y.backward(), /second time|freed/);
  assertOpError("backward", () => ones([1], on).sum().backward(), "does not require grad");
  assertOpError("copy_", () => x.copy_(ones([2], { ...on, dtype: "float64" })), /leaf Variable|in-place/);
});

// A fresh node process runs the ops most likely to take a native library down (out-of-range indices
// deep in kernels, disposed handles, overflowing sizes, a second backward) and must exit normally.
test("crash candidates in a child process: errors are printed and the process exits 0", () => {
  const entry = fileURLToPath(new URL("../../src/index.js", import.meta.url));
  const script = `
    const t = await import(${JSON.stringify(entry)});
    const { F } = t;
    const attempts = {
      embeddingIndexPastEnd: () => F.embedding(t.ones([3, 2]), t.tensor([5], { dtype: "int64" })),
      gatherIndexPastEnd: () => t.ones([3]).gather(0, t.tensor([5], { dtype: "int64" })),
      scatterAddIndexPastEnd: () => t.zeros([3]).scatterAdd(0, t.tensor([9], { dtype: "int64" }), t.ones([1])),
      indexPutIndexPastEnd: () => t.ones([3]).indexPut([t.tensor([7], { dtype: "int64" })], t.ones([1])),
      overflowingShape: () => t.zeros([2 ** 31, 2 ** 31, 2 ** 31]),
      disposedHandle: () => { const a = t.ones([2]); a.dispose(); return a.matmul(a); },
      secondBackward: () => { const x = t.ones([2], { requiresGrad: true }); const y = x.mul(x).sum(); y.backward(); y.backward(); },
      detachedBuffer: () => { const b = new Float32Array(4); structuredClone(b.buffer, { transfer: [b.buffer] }); return t.fromBuffer(b, [4], "float32"); },
      badRngState: () => t.setRngState(Buffer.from([1, 2, 3])),
    };
    for (const [name, attempt] of Object.entries(attempts)) {
      try { attempt(); console.log("NO ERROR " + name); }
      catch (error) { console.log("caught " + name + ": " + error.message.split("\\n")[0]); }
    }
    console.log("still alive: " + JSON.stringify(t.ones([2]).add(1).toArray()));
  `;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", env: process.env, timeout: 60_000 });
  assert.equal(child.signal, null, `child was killed by ${child.signal}; stderr:\n${child.stderr}`);
  assert.equal(child.status, 0, `child exit code ${child.status}; stderr:\n${child.stderr}`);
  const lines = child.stdout.trim().split("\n");
  for (const [name, op] of [
    ["embeddingIndexPastEnd", "embedding"], ["gatherIndexPastEnd", "gather"], ["scatterAddIndexPastEnd", "scatterAdd"],
    ["indexPutIndexPastEnd", "indexPut"], ["overflowingShape", "zeros"], ["disposedHandle", "matmul"], ["secondBackward", "backward"],
    ["detachedBuffer", "fromBuffer"], ["badRngState", "setRngState"],
  ]) {
    assert.ok(lines.some((l) => l.startsWith(`caught ${name}: ${op}: `)), `expected '${name}' to be caught naming ${op}; output:\n${child.stdout}`);
  }
  assert.ok(lines.includes("still alive: [2,2]"), child.stdout);
});

test("CUDA-only: a second device index that does not exist", { skip: !ON_CUDA && "runs with VLMKIT_TEST_DEVICE=cuda" }, () => {
  assertOpError("zeros", () => zeros([2], { device: "cuda:99" }), "cuda:99");
  const t: Tensor = ones([2], on);
  assertOpError("to", () => t.to("cuda:99"), "cuda:99");
});
