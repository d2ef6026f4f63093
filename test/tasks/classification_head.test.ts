// Pooling over tokens (left and right padding), the head's layers, and top-k predictions, against values
// computed by hand.
import { test } from "node:test";
import assert from "node:assert/strict";
import { tensor, randn, manualSeed, noGrad, F, gradcheck } from "../../src/index.js";
import { poolHidden, ClassificationHead, topKPredictions } from "../../src/tasks/classification_head.js";

// hidden[b][t] = [10 b + t, -(10 b + t)]
const hidden = tensor([0, 1].map((b) => [0, 1, 2, 3].map((t) => [10 * b + t, -(10 * b + t)])), { dtype: "float64" });

test("pooling 'last' takes each row's last real token, with right or left padding", () => {
  const right = tensor([[1, 1, 0, 0], [1, 1, 1, 1]], { dtype: "int64" });
  assert.deepEqual(poolHidden(hidden, right, "last").toArray(), [[1, -1], [13, -13]]);
  const left = tensor([[0, 0, 1, 1], [0, 1, 1, 1]], { dtype: "int64" });
  assert.deepEqual(poolHidden(hidden, left, "last").toArray(), [[3, -3], [13, -13]]);
  assert.deepEqual(poolHidden(hidden, null, "last").toArray(), [[3, -3], [13, -13]]);
});

test("pooling 'mean' averages real tokens only; 'cls' is position 0", () => {
  const mask = tensor([[1, 1, 0, 0], [0, 1, 1, 1]], { dtype: "int64" });
  assert.deepEqual(poolHidden(hidden, mask, "mean").toArray(), [[0.5, -0.5], [12, -12]]);
  assert.deepEqual(poolHidden(hidden, null, "mean").toArray(), [[1.5, -1.5], [11.5, -11.5]]);
  assert.deepEqual(poolHidden(hidden, mask, "cls").toArray(), [[0, -0], [10, -10]]);
  assert.throws(() => poolHidden(hidden, tensor([[1, 1]], { dtype: "int64" }), "mean"), /attention mask \[1,2\] does not match/);
  assert.throws(() => poolHidden(hidden, null, "max" as never), /pooling must be last, mean or cls/);
});

test("the head is dense -> LayerNorm -> GELU -> dropout -> out_proj; hiddenSize 0 is a single Linear", () => {
  manualSeed(0);
  const head = new ClassificationHead({ inputSize: 6, numClasses: 3, hiddenSize: 4, dropout: 0.5 }).double().eval();
  const x = randn([5, 6], { dtype: "float64" });
  const expected = noGrad(() => {
    const h = F.gelu(F.layerNorm(F.linear(x, head.dense!.weight, head.dense!.bias), [4], head.norm!.weight, head.norm!.bias, 1e-5));
    return F.linear(h, head.out_proj.weight, head.out_proj.bias);
  });
  assert.ok(head.forward(x).allclose(expected, 1e-12, 1e-12));
  assert.deepEqual(head.namedParameters().map(([n]) => n), ["dense.weight", "dense.bias", "norm.weight", "norm.bias", "out_proj.weight", "out_proj.bias"]);
  const probe = new ClassificationHead({ inputSize: 6, numClasses: 3, hiddenSize: 0 });
  assert.deepEqual(probe.namedParameters().map(([n]) => n), ["out_proj.weight", "out_proj.bias"]);
  assert.throws(() => new ClassificationHead({ inputSize: 6, numClasses: 1 }), /at least 2 classes/);
  const input = randn([3, 6], { dtype: "float64", requiresGrad: true });
  assert.ok(gradcheck((t) => head.forward(t), [input]).ok, "the head's gradients match finite differences");
});

test("top-k predictions carry softmax probabilities in order", () => {
  const logits = tensor([[0, Math.log(3), 0]]);
  const [row] = topKPredictions(logits, ["a", "b", "c"], 2);
  assert.equal(row[0].label, "b");
  assert.ok(Math.abs(row[0].probability - 0.6) < 1e-6);
  assert.equal(row[1].index, 0, "ties go to the lower index");
  assert.ok(Math.abs(row[1].probability - 0.2) < 1e-6);
});
