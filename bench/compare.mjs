// Reads the JSON lines of a benchmark run (vlmkit and reference side by side) and prints a table with ratios.
import { readFileSync } from "node:fs";

const lines = readFileSync(process.argv[2], "utf8").split("\n").filter((l) => l.startsWith("{"));
const results = lines.map((l) => JSON.parse(l));
const higherIsBetter = { tflops: true, stepsPerSecond: true, tokensPerSecond: true, seconds: false, usPerOp: false, peakGiB: false, seconds10Epochs: false };
const byBench = new Map();
for (const r of results) {
  if (!byBench.has(r.bench)) byBench.set(r.bench, []);
  byBench.get(r.bench).push(r);
}
for (const [bench, rows] of byBench) {
  const ours = rows.find((r) => r.impl === "vlmkit");
  for (const ref of rows.filter((r) => r.impl !== "vlmkit")) {
    for (const [key, better] of Object.entries(higherIsBetter)) {
      if (key === "seconds" || ours?.[key] === undefined || ref[key] === undefined) continue;
      const ratio = better ? ours[key] / ref[key] : ref[key] / ours[key];
      console.log(`${bench.padEnd(24)} ${key.padEnd(16)} vlmkit ${ours[key].toFixed(3).padStart(10)}  ${ref.impl.padEnd(22)} ${ref[key].toFixed(3).padStart(10)}  vlmkit speed ${ratio.toFixed(3)}x`);
    }
  }
}

// Head training: vlmkit's cached-feature run against each loop that re-runs the backbone every epoch.
const cached = results.find((r) => r.bench === "head_cached_features" && r.impl === "vlmkit");
for (const rerun of results.filter((r) => r.bench === "head_rerun_backbone")) {
  if (cached) console.log(`head 10 epochs: cached ${cached.seconds10Epochs.toFixed(1)} s vs ${rerun.impl} re-running the backbone ${rerun.seconds10Epochs.toFixed(1)} s: ${(rerun.seconds10Epochs / cached.seconds10Epochs).toFixed(1)}x faster`);
}
