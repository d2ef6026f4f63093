// The build's libtorch locator: what it finds, and the message when LIBTORCH points nowhere useful.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const script = join(process.cwd(), "scripts", "find-libtorch.mjs");

test("the locator reports the libtorch this build uses", () => {
  const run = spawnSync(process.execPath, [script], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const info = JSON.parse(run.stdout);
  assert.match(info.version, /^\d+\.\d+$/);
  assert.ok(info.defines.some((d: string) => /^_GLIBCXX_USE_CXX11_ABI=[01]$/.test(d)), "the ABI flag is read and passed on");
  assert.ok(info.libs.includes("-ltorch"));
});

test("a LIBTORCH folder without headers gets an error naming what was looked for and the fix", () => {
  const empty = mkdtempSync(join(tmpdir(), "vlmkit-no-libtorch-"));
  const run = spawnSync(process.execPath, [script, "--include"], { encoding: "utf8", env: { ...process.env, LIBTORCH: empty } });
  assert.equal(run.status, 1);
  assert.match(run.stderr, new RegExp(`\\$LIBTORCH points at ${empty}`));
  assert.match(run.stderr, /ATen\/ATen\.h is missing/);
  assert.match(run.stderr, /Fix: point LIBTORCH at a folder/);
});
