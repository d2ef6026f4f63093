const t = await import(process.cwd() + "/dist/src/index.js");
console.log(t.buildInfo(), t.cuda.isAvailable(), t.cuda.deviceCount(), t.cuda.deviceName(0));
const a = t.randn([1024, 1024], { device: "cuda", dtype: "bf16" });
const b = a.matmul(a); t.cuda.synchronize(); console.log(b.shape, b.dtype, b.device);
const q = t.randn([2, 4, 128, 64], { device: "cuda", dtype: "bf16" });
const o = t.F.scaledDotProductAttention(q, q, q, { isCausal: true });
const r = t.F.scaledDotProductAttentionReference(q, q, q, { isCausal: true });
console.log("sdpa diff", o.float().sub(r.float()).abs().max().item());
const w = t.randn([64, 64], { device: "cuda", requiresGrad: true });
const x = t.randn([8, 64], { device: "cuda" });
const y = t.autocast("cuda", "bf16", () => x.matmul(w)); console.log("autocast dtype", y.dtype);
y.float().sum().backward(); console.log("grad", w.grad.shape, w.grad.dtype);
console.log(t.cuda.memoryStats(0));
try { t.zeros([2], { device: "cuda:7" }) } catch (e) { console.log("ERR", e.message) }
