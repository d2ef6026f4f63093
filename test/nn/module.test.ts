import { test } from "node:test";
import assert from "node:assert/strict";
import {
  nn, Module, ModuleList, ModuleDict, Sequential, Parameter, Linear, Embedding, LayerNorm, Dropout, Identity, RMSNorm,
  Tensor, tidy, liveTensorCount, zeros, ones, arange, randn, tensor, manualSeed, noGrad,
} from "../../src/index.js";
import { assertClose, values } from "./helpers.js";

class MLP extends Module {
  fc1: Linear;
  fc2: Linear;
  constructor(hidden: number, inner: number) {
    super();
    this.fc1 = new Linear(hidden, inner);
    this.fc2 = new Linear(inner, hidden, { bias: false });
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.fc2.forward(this.fc1.forward(x).relu()));
  }
}

class Block extends Module {
  input_layernorm = new RMSNorm(4);
  mlp = new MLP(4, 6);
  _cache: Tensor | null = null; // private state: not part of the tree
  scratch: Tensor[] = []; // arrays are not walked
}

class TinyModel extends Module {
  embed_tokens = new Embedding(10, 4);
  layers = new ModuleList([new Block(), new Block()]);
  norm = new LayerNorm(4);
  constructor() {
    super();
    this.registerBuffer("position_ids", tidy(() => arange(8).view(1, 8)));
    this.registerBuffer("inv_freq", ones([2]), false);
  }
}

const EXPECTED_NAMES = [
  "embed_tokens.weight",
  "layers.0.input_layernorm.weight",
  "layers.0.mlp.fc1.weight",
  "layers.0.mlp.fc1.bias",
  "layers.0.mlp.fc2.weight",
  "layers.1.input_layernorm.weight",
  "layers.1.mlp.fc1.weight",
  "layers.1.mlp.fc1.bias",
  "layers.1.mlp.fc2.weight",
  "norm.weight",
  "norm.bias",
];

test("parameters are named by their dotted property paths, ModuleList entries by index", () => {
  const model = new TinyModel();
  assert.deepEqual(model.namedParameters().map(([name]) => name), EXPECTED_NAMES);
  assert.deepEqual(model.namedParameters("model").map(([name]) => name)[2], "model.layers.0.mlp.fc1.weight");
  assert.deepEqual(model.getParameter("layers.1.mlp.fc1.weight").shape, [6, 4]);
  assert.equal(model.parameters().length, EXPECTED_NAMES.length);
  assert.deepEqual(model.namedChildren().map(([name]) => name), ["embed_tokens", "layers", "norm"]);
  assert.deepEqual(model.namedModules().map(([name]) => name), [
    "", "embed_tokens", "layers", "layers.0", "layers.0.input_layernorm", "layers.0.mlp", "layers.0.mlp.fc1", "layers.0.mlp.fc2",
    "layers.1", "layers.1.input_layernorm", "layers.1.mlp", "layers.1.mlp.fc1", "layers.1.mlp.fc2", "norm",
  ]);
  assert.deepEqual(model.namedBuffers().map(([name]) => name), ["position_ids", "inv_freq"]);
  assert.equal(model.getSubmodule("layers.0.mlp.fc2"), model.layers.at(0).mlp.fc2);
  assert.equal(model.getSubmodule(""), model);
  assert.throws(() => model.getSubmodule("layers.0.attn"), /layers\.0 \(Block\) has no submodule 'attn'; its submodules are: input_layernorm, mlp/);
  assert.equal(model.hasSubmodule("layers.0.mlp.fc2"), true);
  assert.equal(model.hasSubmodule("layers.0.attn"), false);
  model.dispose();
});

test("numParameters counts elements, tied weights once, and only trainable ones on request", () => {
  const model = new TinyModel();
  const perBlock = 4 + (6 * 4 + 6) + 4 * 6;
  assert.equal(model.numParameters(), 10 * 4 + 2 * perBlock + 4 + 4);
  model.embed_tokens.freeze();
  assert.equal(model.numParameters(true), 2 * perBlock + 8);
  // Tie a head to the embedding: one tensor under two names.
  class Tied extends Module {
    embed = new Embedding(10, 4);
    head = new Linear(4, 10, { bias: false });
  }
  const tied = new Tied();
  tied.setParameter("head.weight", tied.embed.weight);
  assert.equal(tied.head.weight, tied.embed.weight);
  assert.equal(tied.numParameters(), 40);
  assert.deepEqual(tied.namedParameters().map(([n]) => n), ["embed.weight"]);
  assert.deepEqual(tied.namedParameters("", false).map(([n]) => n), ["embed.weight", "head.weight"]);
  assert.deepEqual([...tied.stateDict().keys()], ["embed.weight", "head.weight"]);
  model.dispose();
  tied.dispose();
});

test("stateDict holds the live tensors; a round trip into a fresh model reproduces every value", () => {
  manualSeed(1);
  const source = new TinyModel();
  const state = source.stateDict();
  // Own parameters and buffers come before the children's, as in torch.
  assert.deepEqual([...state.keys()], ["position_ids", ...EXPECTED_NAMES]);
  assert.equal(state.get("layers.0.mlp.fc1.weight"), source.layers.at(0).mlp.fc1.weight);
  assert.ok(!state.has("inv_freq"), "non-persistent buffers are not saved");
  manualSeed(2);
  const target = new TinyModel();
  noGrad(() => target.getParameter("norm.weight").fill_(3));
  const before = liveTensorCount();
  const result = target.loadStateDict(state);
  assert.equal(liveTensorCount(), before, "loading frees its temporaries");
  assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [] });
  for (const [name, t] of target.stateDict()) assert.deepEqual(values(t), values(state.get(name)!), name);
  assert.notEqual(target.getParameter("norm.weight"), source.getParameter("norm.weight"), "values are copied, not aliased");
  // A plain object works too.
  const fromRecord = new TinyModel();
  fromRecord.loadStateDict(Object.fromEntries(state));
  assert.deepEqual(values(fromRecord.embed_tokens.weight), values(source.embed_tokens.weight));
  source.dispose();
  target.dispose();
  fromRecord.dispose();
});

test("strict loading lists missing and unexpected keys with counts; non-strict returns them", () => {
  const model = new TinyModel();
  const state = new Map(model.stateDict());
  state.delete("norm.bias");
  state.delete("layers.1.mlp.fc2.weight");
  state.set("lm_head.weight", zeros([10, 4]));
  assert.throws(
    () => model.loadStateDict(state),
    (error: Error) => {
      assert.match(error.message, /missing keys \(2\): layers\.1\.mlp\.fc2\.weight, norm\.bias/);
      assert.match(error.message, /unexpected keys \(1\): lm_head\.weight/);
      assert.match(error.message, /strict: false/);
      return true;
    },
  );
  const result = model.loadStateDict(state, { strict: false });
  assert.deepEqual(result, { missingKeys: ["layers.1.mlp.fc2.weight", "norm.bias"], unexpectedKeys: ["lm_head.weight"] });
  // Long lists are cut after 20 names, with the total.
  const many = new Map<string, Tensor>();
  for (let i = 0; i < 25; i++) many.set(`extra.${i}`, zeros([1]));
  assert.throws(() => model.loadStateDict(many), /unexpected keys \(25\): extra\.0, .*extra\.19, \.\.\. \(5 more\)/);
  assert.throws(() => model.loadStateDict(many), /missing keys \(12\)/);
  state.get("lm_head.weight")!.dispose();
  for (const t of many.values()) t.dispose();
  model.dispose();
});

test("a shape mismatch names the key and both shapes, and nothing is copied", () => {
  const model = new TinyModel();
  const state = new Map(model.stateDict());
  const wrong = zeros([6, 5]);
  state.set("layers.0.mlp.fc1.weight", wrong);
  const embedBefore = values(model.embed_tokens.weight);
  const other = randn([10, 4]);
  state.set("embed_tokens.weight", other);
  assert.throws(() => model.loadStateDict(state), /'layers\.0\.mlp\.fc1\.weight': checkpoint has shape \[6,5\], module expects \[6,4\]/);
  assert.throws(() => model.loadStateDict(state, { strict: false }), /shape mismatch/);
  assert.deepEqual(values(model.embed_tokens.weight), embedBefore);
  wrong.dispose();
  other.dispose();
  model.dispose();
});

test("loading casts the dtype to the target's", () => {
  const linear = new Linear(3, 2);
  const weight = tensor([[0.1, 0.2, 0.3], [1 / 3, 2 / 3, 1]], { dtype: "float64" });
  const bias = tensor([5, 6], { dtype: "float64" });
  linear.loadStateDict({ weight, bias });
  assert.equal(linear.weight.dtype, "float32");
  assertClose(values(linear.weight), [0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1], 1e-7);
  assert.deepEqual(values(linear.bias!), [5, 6]);
  assert.ok(linear.weight.requiresGrad && linear.weight.isLeaf, "still a trainable leaf");
  const half = new Linear(3, 2, { dtype: "bfloat16" });
  half.loadStateDict({ weight, bias });
  assert.equal(half.weight.dtype, "bfloat16");
  assertClose(values(half.weight), [0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1], 1e-2);
  weight.dispose();
  bias.dispose();
  linear.dispose();
  half.dispose();
});

test("freeze / unfreeze / requiresGrad_ act on every parameter", () => {
  const model = new TinyModel();
  model.freeze();
  assert.ok(model.parameters().every((p) => !p.requiresGrad));
  assert.equal(model.numParameters(true), 0);
  model.layers.at(1).unfreeze();
  assert.deepEqual(
    model.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n),
    EXPECTED_NAMES.filter((n) => n.startsWith("layers.1.")),
  );
  model.requiresGrad_(true);
  assert.ok(model.parameters().every((p) => p.requiresGrad));
  // Frozen parameters get no gradient; trainable ones do.
  model.embed_tokens.freeze();
  tidy(() => {
    const ids = tensor([[1, 2, 3]], { dtype: "int64" });
    const h = model.norm.forward(model.layers.at(0).mlp.forward(model.embed_tokens.forward(ids)));
    h.sum().backward();
  });
  assert.equal(model.embed_tokens.weight.grad, null);
  const g = model.norm.weight!.grad;
  assert.ok(g !== null);
  g.dispose();
  model.zeroGrad();
  assert.equal(model.norm.weight!.grad, null);
  model.dispose();
});

test("train() / eval() propagate to every submodule and drive Dropout", () => {
  manualSeed(0);
  const net = new Sequential(new Identity(), new Dropout(0.5), new ModuleList([new Dropout(0.1)]));
  assert.ok(net.modules().every((m) => m.training));
  net.eval();
  assert.ok(net.modules().every((m) => !m.training));
  const x = ones([1000]);
  const evalOut = (net.at(1) as Dropout).forward(x);
  assert.deepEqual(values(evalOut), values(x), "eval mode: identity");
  net.train();
  assert.ok(net.modules().every((m) => m.training));
  const trainOut = (net.at(1) as Dropout).forward(x);
  const out = values(trainOut);
  assert.ok(out.every((v) => v === 0 || v === 2), "inverted dropout scales kept values by 1/(1-p)");
  const zerosCount = out.filter((v) => v === 0).length;
  assert.ok(zerosCount > 400 && zerosCount < 600, `about half dropped, got ${zerosCount}`);
  net.train(false);
  assert.ok(!net.at(2).training);
  for (const t of [x, evalOut, trainOut]) t.dispose();
});

test("Sequential feeds each child's output to the next", () => {
  const net = new Sequential([new Linear(3, 5), nn.activation("relu"), new Linear(5, 2)]);
  assert.deepEqual(net.namedParameters().map(([n]) => n), ["0.weight", "0.bias", "2.weight", "2.bias"]);
  const x = randn([4, 3]);
  const expected = tidy(() => values((net.at(2) as Linear).forward((net.at(0) as Linear).forward(x).relu())));
  const got = tidy(() => values(net.forward(x)));
  assert.deepEqual(got, expected);
  assert.throws(() => new Sequential(new Block()).forward(x), /child 0 \(Block\) has no forward/);
  x.dispose();
  net.dispose();
});

test("ModuleList and ModuleDict: indexing, iteration, insertion order", () => {
  const list = new ModuleList<Linear>([new Linear(2, 2)]);
  list.push(new Linear(2, 3));
  assert.equal(list.length, 2);
  assert.equal(list.at(-1).outFeatures, 3);
  assert.equal(list[0], list.at(0));
  assert.deepEqual([...list].map((m) => m.outFeatures), [2, 3]);
  assert.throws(() => list.at(2), /out of range/);
  // A Map keeps insertion order even for numeric-looking keys (a plain object would put "1" first).
  const dict = new ModuleDict<Module>(new Map<string, Module>([["vision", new Linear(2, 2)], ["1", new Linear(2, 4)]]));
  dict.set("text", new Linear(2, 3));
  assert.deepEqual(dict.keys(), ["vision", "1", "text"]);
  assert.deepEqual(dict.namedParameters().map(([n]) => n), ["vision.weight", "vision.bias", "1.weight", "1.bias", "text.weight", "text.bias"]);
  assert.equal((dict.get("text") as Linear).outFeatures, 3);
  assert.throws(() => dict.get("audio"), /no such key; keys are: vision, 1, text/);
  assert.throws(() => dict.set("keys", new Identity()), /member name/);
  list.dispose();
  dict.dispose();
});

test("to(dtype) converts floating parameters and buffers in place, keeping objects, ties and requiresGrad", () => {
  class Tied extends Module {
    embed = new Embedding(5, 3);
    head = new Linear(3, 5, { bias: false });
    constructor() {
      super();
      this.head.weight = this.embed.weight;
      this.registerBuffer("ids", arange(5));
      this.registerBuffer("scale", ones([3]));
    }
  }
  const model = new Tied();
  model.embed.freeze();
  const weight = model.embed.weight;
  const before = values(weight);
  const live = liveTensorCount();
  model.to("float64");
  assert.equal(liveTensorCount(), live, "old storage freed");
  assert.equal(model.embed.weight, weight, "same Parameter object");
  assert.equal(model.head.weight, model.embed.weight, "still tied");
  assert.equal(weight.dtype, "float64");
  assert.equal(weight.requiresGrad, false);
  assertClose(values(weight), before, 0);
  const buffers = Object.fromEntries(model.namedBuffers());
  assert.equal(buffers.ids.dtype, "int64", "integer buffers keep their dtype");
  assert.equal(buffers.scale.dtype, "float64");
  model.unfreeze().to({ dtype: "bf16" });
  assert.equal(weight.dtype, "bfloat16");
  assert.ok(weight.requiresGrad && weight.isLeaf);
  model.to("cpu");
  assert.equal(weight.device, "cpu");
  model.dispose();
});

test("to(dtype) also converts an accumulated gradient", () => {
  const linear = new Linear(2, 2);
  tidy(() => linear.forward(ones([1, 2])).sum().backward());
  linear.to("float64");
  const g = linear.weight.grad!;
  assert.equal(g.dtype, "float64");
  assert.deepEqual(values(g), [1, 1, 1, 1]);
  g.dispose();
  linear.dispose();
});

test("a Parameter takes over its tensor's storage and survives tidy()", () => {
  const before = liveTensorCount();
  const p = tidy(() => {
    const t = randn([3, 3]);
    const param = new Parameter(t);
    assert.ok(t.isDisposed, "the source tensor gives up its handle");
    randn([2]); // a temporary that tidy frees
    return 0 as number;
  });
  assert.equal(p, 0);
  assert.equal(liveTensorCount(), before + 1, "the parameter (only) survives the scope");
  const made: Parameter[] = [];
  tidy(() => {
    made.push(new Parameter(ones([2])));
  });
  assert.ok(!made[0].isDisposed && made[0].requiresGrad && made[0].isLeaf);
  assert.deepEqual(values(made[0]), [1, 1]);
  // From a tensor with autograd history: becomes a detached leaf.
  const source = ones([2], { requiresGrad: true });
  const derived = source.mul(2);
  const leaf = new Parameter(derived);
  assert.ok(leaf.isLeaf && leaf.requiresGrad);
  tidy(() => assert.throws(() => new Parameter(arange(3)), /int64 tensor cannot require grad/));
  const frozenInt = new Parameter(arange(3), false);
  assert.equal(frozenInt.requiresGrad, false);
  for (const t of [made[0], source, leaf, frozenInt]) t.dispose();
  // The parameter made inside the first scope was lost to JS; its memory is still counted.
  assert.equal(liveTensorCount(), before + 1);
});

test("dispose() frees every parameter and buffer", () => {
  const before = liveTensorCount();
  const model = new TinyModel();
  assert.equal(liveTensorCount() - before, EXPECTED_NAMES.length + 2);
  model.dispose();
  assert.equal(liveTensorCount(), before);
  assert.ok(model.parameters().every((p) => p.isDisposed));
});

test("setParameter replaces a parameter and frees the old one unless still used", () => {
  const model = new TinyModel();
  const before = liveTensorCount();
  const old = model.layers.at(0).mlp.fc1.weight;
  model.setParameter("layers.0.mlp.fc1.weight", zeros([6, 4]));
  assert.ok(old.isDisposed);
  assert.equal(liveTensorCount(), before);
  const replaced = model.getParameter("layers.0.mlp.fc1.weight");
  assert.ok(replaced instanceof Parameter && replaced.requiresGrad);
  model.setParameter("layers.0.mlp.fc2.weight", model.layers.at(1).mlp.fc2.weight);
  assert.ok(!model.layers.at(1).mlp.fc2.weight.isDisposed);
  // Integer replacement (quantized weights) does not require grad.
  model.setParameter("norm.bias", zeros([4], { dtype: "int8" }));
  assert.equal(model.getParameter("norm.bias").requiresGrad, false);
  assert.throws(() => model.setParameter("layers.0.mlp.fc3.weight", zeros([1])), /no submodule 'fc3'/);
  assert.throws(() => model.setParameter("layers.0.mlp.fc1.scale", zeros([1])), /Linear has no parameter 'scale'; its parameters are: weight, bias/);
  model.dispose();
});

test("registerBuffer: kept, replaced buffers freed, persistent flag honoured", () => {
  class WithBuffer extends Module {
    constructor() {
      super();
      tidy(() => this.registerBuffer("table", arange(4)));
    }
  }
  const m = new WithBuffer();
  const table = (m as unknown as { table: Tensor }).table;
  assert.ok(!table.isDisposed, "buffer survived tidy");
  m.registerBuffer("table", arange(6), false);
  assert.ok(table.isDisposed, "the replaced buffer is freed");
  assert.deepEqual([...m.stateDict().keys()], []);
  assert.deepEqual(m.namedBuffers().map(([n]) => n), ["table"]);
  m.registerBuffer("table", null);
  assert.deepEqual(m.namedBuffers(), []);
  assert.throws(() => m.registerBuffer("training", zeros([1])), /already a property/);
  assert.throws(() => m.registerBuffer("dispose", zeros([1])), /already a property/);
  // A declared field can become a buffer.
  class Rotary extends Module {
    inv_freq!: Tensor;
    constructor() {
      super();
      this.registerBuffer("inv_freq", ones([2]), false);
    }
  }
  const rotary = new Rotary();
  assert.deepEqual(rotary.namedBuffers().map(([n]) => n), ["inv_freq"]);
  rotary.dispose();
  m.dispose();
});

test("apply visits children before parents, once each", () => {
  const model = new TinyModel();
  const seen: string[] = [];
  model.apply((m) => seen.push(m.constructor.name));
  assert.deepEqual(seen, ["Embedding", "RMSNorm", "Linear", "Linear", "MLP", "Block", "RMSNorm", "Linear", "Linear", "MLP", "Block", "ModuleList", "LayerNorm", "TinyModel"]);
  model.dispose();
});
