// Loads the native addon (build/Release/vlmkit_native.node) and explains what to do when it is missing
// or cannot find libtorch at run time.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Opaque handle of a native tensor. */
export type Handle = { readonly __nativeTensor: unique symbol };

// The addon's functions are many and uniform; they are typed at the TypeScript layer above.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type NativeAddon = Record<string, (...args: any[]) => any>;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error("vlmkit: cannot find the package root above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

function load(): NativeAddon {
  const root = packageRoot();
  const candidates = [
    process.env.VLMKIT_NATIVE,
    join(root, "build", "Release", "vlmkit_native.node"),
    join(root, "build", "Debug", "vlmkit_native.node"),
  ].filter((p): p is string => !!p);
  const path = candidates.find((p) => existsSync(p));
  if (!path) {
    throw new Error(
      `vlmkit: the native addon is not built. Looked for:\n  ${candidates.map((p) => resolve(p)).join("\n  ")}\n` +
        `Fix: run \`npm run build:native\` in ${root} (needs libtorch: \`apt-get install libtorch-dev libopenblas0-pthread\`, ` +
        `or set LIBTORCH to a libtorch or PyTorch torch/ folder).`,
    );
  }
  const require = createRequire(import.meta.url);
  try {
    return require(path) as NativeAddon;
  } catch (error) {
    const message = (error as Error).message;
    const hint = /lib(torch|c10)[^ ]*\.so/.test(message)
      ? "libtorch's shared libraries cannot be loaded: install libtorch-dev, or rebuild against the libtorch you have (`npm run build:native`)."
      : /undefined symbol/.test(message)
        ? "the addon was built against a different libtorch than the one now found: rebuild it (`npm run build:native`)."
        : "rebuild the addon (`npm run build:native`).";
    throw new Error(`vlmkit: cannot load the native addon ${path}: ${message}\nFix: ${hint}`);
  }
}

export const native: NativeAddon = load();
