// What `npm pack` ships (package.json "files"): the built library, the addon's sources and its build script, the
// docs; never the tests, fixtures, benchmarks or the compiled tests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));

test("npm pack ships the library and the addon's build, and no tests, fixtures or benchmarks", () => {
  // --ignore-scripts: list what is packed without running prepack's build again (this test runs from that build)
  const run = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  const [pack] = JSON.parse(run.stdout) as { files: { path: string }[] }[];
  const paths = pack.files.map((f) => f.path);
  const unwanted = paths.filter((p) => /^(dist\/)?(test|fixtures|bench|examples|tools)\//.test(p) || /(^|\/)[^/]*\.test\.(js|ts|d\.ts)(\.map)?$/.test(p));
  assert.deepEqual(unwanted, [], "nothing under test/, fixtures/, bench/ or dist/test/ is packed");
  for (const needed of [
    "package.json", "README.md", "DESIGN.md", "binding.gyp", "scripts/find-libtorch.mjs", "scripts/setup.sh", "native/addon.cc",
    "dist/src/index.js", "dist/src/index.d.ts", "dist/src/cli/main.js", "dist/src/runs/yaml.js",
  ]) {
    assert.ok(paths.includes(needed), `${needed} is packed`);
  }
  // every file binding.gyp compiles is packed, so that installing builds the addon
  const gyp = JSON.parse(readFileSync(join(root, "binding.gyp"), "utf8")) as { targets: { sources: string[] }[] };
  for (const source of gyp.targets.flatMap((t) => t.sources)) assert.ok(paths.includes(source), `${source} (binding.gyp) is packed`);
  assert.ok(paths.includes("native/common.h"));
  // an addon built on this machine is no use on another
  assert.ok(!paths.some((p) => p.startsWith("build/")), "no build/ is packed");
});
