// The finalization backstop: tensors that escape every tidy() scope and are dropped without dispose() are
// freed once the GC collects them (run in a child process with --expose-gc).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const entry = fileURLToPath(new URL("../../src/index.js", import.meta.url));

test("dropped tensors outside tidy() are freed by the GC; tensors still referenced are not", () => {
  const script = `
    const t = await import(${JSON.stringify(entry)});
    const base = t.liveTensorCount();
    const held = [];
    for (let i = 0; i < 500; i++) held.push(t.ones([4]));
    (function drop() { for (let i = 0; i < 1000; i++) t.ones([4]).mul(2); })();
    for (let i = 0; i < 10; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
    const afterGc = t.liveTensorCount() - base;
    const sum = held.reduce((acc, x) => acc + x.sum().item(), 0);
    console.log(JSON.stringify({ afterGc, sum }));
  `;
  const run = spawnSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const { afterGc, sum } = JSON.parse(run.stdout.trim().split("\n").pop()!);
  assert.equal(sum, 500 * 4, "the 500 held tensors are intact after collection");
  assert.ok(afterGc >= 500 && afterGc < 600, `2000 dropped tensors should be freed, ${afterGc - 500} of them are still alive`);
});
