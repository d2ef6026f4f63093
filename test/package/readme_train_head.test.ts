// The README's TypeScript example that trains a head and evaluates it with the exported API alone: the README shows
// examples/train_head.ts verbatim, and the compiled example runs on the built-in data and learns.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));

test("README: the head-training example is examples/train_head.ts as written, and it trains and reports", { timeout: 300_000 }, () => {
  const source = readFileSync(join(root, "examples", "train_head.ts"), "utf8");
  const readme = readFileSync(join(root, "README.md"), "utf8");
  assert.ok(readme.includes("```ts\n" + source + "```"), "README.md shows examples/train_head.ts in a ```ts block, unchanged");
  const dir = mkdtempSync(join(tmpdir(), "vlmkit-example-"));
  const output = execFileSync(process.execPath, [join(root, "dist", "examples", "train_head.js"), dir], { cwd: root, encoding: "utf8" });
  assert.match(output, /features: 0 loaded from the cache, 500 computed through the frozen backbone/);
  assert.match(output, /trained 280 steps; best val accuracy 0\.\d+/);
  const report = JSON.parse(readFileSync(join(dir, "run", "eval", "val", "report.json"), "utf8"));
  assert.equal(report.report.total, 100);
  // 9 classes: chance is 11%
  assert.ok(report.metrics.accuracy > 0.5, `held-out accuracy ${report.metrics.accuracy}`);
  for (const file of ["report.txt", "confusion.csv", "confusion.png", "predictions.jsonl"]) assert.ok(existsSync(join(dir, "run", "eval", "val", file)), file);
});
