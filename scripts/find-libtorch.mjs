#!/usr/bin/env node
// Locates libtorch the way tch-rs does: $LIBTORCH (a libtorch folder or a PyTorch `torch/` folder),
// else the PyTorch that `python3 -c 'import torch'` finds, else the system's libtorch-dev.
// Prints one field for binding.gyp (`--include`, `--libdir`, `--libs`, `--defines`, `--cflags`)
// or, with no flag, a JSON summary. Exits non-zero with a message saying what was looked for.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";

function fail(message) {
  process.stderr.write(`\nvlmkit: cannot build the native addon: ${message}\n\n`);
  process.exit(1);
}

function fromPython() {
  try {
    const out = execFileSync(
      "python3",
      ["-c", "import torch, os; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"],
      { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] },
    );
    const [dir, abi] = out.trim().split("\n");
    return { root: dir, abi, source: "python3 -c 'import torch'" };
  } catch {
    return null;
  }
}

function candidates() {
  const tried = [];
  if (process.env.LIBTORCH) {
    return { found: { root: process.env.LIBTORCH, abi: process.env.LIBTORCH_CXX11_ABI, source: "$LIBTORCH" }, tried };
  }
  tried.push("$LIBTORCH (unset)");
  const py = fromPython();
  if (py && existsSync(join(py.root, "include", "ATen", "ATen.h"))) return { found: py, tried };
  tried.push("python3 -c 'import torch' (no PyTorch with C++ headers)");
  if (existsSync("/usr/include/ATen/ATen.h") && existsSync("/usr/lib/x86_64-linux-gnu/libtorch.so")) {
    return { found: { root: "/usr", system: true, source: "system libtorch-dev" }, tried };
  }
  tried.push("/usr/include/ATen/ATen.h + /usr/lib/x86_64-linux-gnu/libtorch.so (Debian's libtorch-dev)");
  return { found: null, tried };
}

// The cxx11 ABI flag is read from the libtorch it belongs to, never guessed.
function readAbi(cmakeDirs) {
  for (const dir of cmakeDirs) {
    const file = join(dir, "TorchConfig.cmake");
    if (!existsSync(file)) continue;
    const m = readFileSync(file, "utf8").match(/_GLIBCXX_USE_CXX11_ABI=([01])/);
    if (m) return m[1];
  }
  return null;
}

function readVersion(includeDir, root) {
  // version.h is where libtorch 1.x puts it (or in include/torch); a pip wheel without it has version.py
  for (const file of [join(includeDir, "torch", "csrc", "api", "include", "torch", "version.h"), join(includeDir, "torch", "version.h")]) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, "utf8");
    const major = text.match(/TORCH_VERSION_MAJOR (\d+)/)?.[1];
    const minor = text.match(/TORCH_VERSION_MINOR (\d+)/)?.[1];
    if (major && minor) return `${major}.${minor}`;
  }
  const py = join(root, "version.py");
  const m = existsSync(py) ? readFileSync(py, "utf8").match(/__version__\s*=\s*["'](\d+)\.(\d+)/) : null;
  return m ? `${m[1]}.${m[2]}` : null;
}

function findCudaInclude(root) {
  const dirs = [process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"].filter(Boolean).map((d) => join(d, "include"));
  // pip wheels ship CUDA headers in site-packages/nvidia/*/include
  const nvidia = join(root, "..", "nvidia");
  if (existsSync(nvidia)) {
    for (const name of readdirSync(nvidia)) dirs.push(join(nvidia, name, "include"));
  }
  const withRuntime = dirs.filter((d) => existsSync(join(d, "cuda_runtime_api.h")));
  return withRuntime.length ? [withRuntime[0], ...dirs.filter((d) => d !== withRuntime[0] && existsSync(d))] : null;
}

function describe() {
  const { found, tried } = candidates();
  if (!found) {
    fail(
      `libtorch was not found. Looked for:\n  - ${tried.join("\n  - ")}\n` +
        `Fix: on Debian/Ubuntu run \`sudo apt-get install libtorch-dev libopenblas0-pthread\`, ` +
        `or set LIBTORCH to a libtorch folder (with include/ and lib/) or to a PyTorch install's torch/ folder.`,
    );
  }
  let include, libdir, cmakeDirs;
  if (found.system) {
    include = ["/usr/include", "/usr/include/torch/csrc/api/include"];
    libdir = "/usr/lib/x86_64-linux-gnu";
    cmakeDirs = ["/usr/lib/x86_64-linux-gnu/cmake/Torch"];
  } else {
    include = [join(found.root, "include"), join(found.root, "include", "torch", "csrc", "api", "include")];
    libdir = join(found.root, "lib");
    cmakeDirs = [join(found.root, "share", "cmake", "Torch")];
  }
  if (!existsSync(join(include[0], "ATen", "ATen.h"))) {
    fail(`${found.source} points at ${found.root}, but ${join(include[0], "ATen", "ATen.h")} is missing. Fix: point LIBTORCH at a folder holding include/ATen and lib/libtorch.so.`);
  }
  if (!existsSync(join(libdir, "libtorch.so"))) {
    fail(`${found.source} points at ${found.root}, but ${join(libdir, "libtorch.so")} is missing. Fix: point LIBTORCH at a folder holding include/ATen and lib/libtorch.so.`);
  }
  const abi = found.abi ?? process.env.LIBTORCH_CXX11_ABI ?? readAbi(cmakeDirs) ?? "1";
  const version = readVersion(include[0], found.root);
  const cuda = existsSync(join(libdir, "libtorch_cuda.so"));
  const cudaInclude = cuda ? findCudaInclude(found.root) : null;
  if (cuda && !cudaInclude) {
    fail(`${libdir} has libtorch_cuda.so but no CUDA headers (cuda_runtime_api.h) were found. Fix: set CUDA_HOME to the CUDA toolkit folder.`);
  }
  const libs = ["-ltorch", "-ltorch_cpu", "-lc10"];
  if (cuda) libs.push("-ltorch_cuda", "-lc10_cuda");
  return {
    source: found.source,
    root: found.root,
    version,
    abi,
    cuda,
    include: [...include, ...(cudaInclude ?? [])],
    libdir,
    libs,
    defines: [`_GLIBCXX_USE_CXX11_ABI=${abi}`, ...(cuda ? ["VLMKIT_CUDA=1"] : [])],
  };
}

const info = describe();
const flag = process.argv[2];
if (!flag) console.log(JSON.stringify(info, null, 2));
else if (flag === "--include") console.log(info.include.join(" "));
else if (flag === "--libdir") console.log(info.libdir);
else if (flag === "--libs") console.log(info.libs.join(" "));
else if (flag === "--defines") console.log(info.defines.join(" "));
else fail(`unknown flag ${flag}`);
