#!/usr/bin/env node
// The `vlmkit` command. Each subcommand is a thin shell over the library.
import { runEngineDemo } from "./demo_engine.js";

const usage = `usage: vlmkit <command>

commands:
  demo      fit a small classifier on generated data (CPU) and print its held-out accuracy
  info      show the libtorch build vlmkit runs on and the CUDA devices it sees`;

async function main(argv: string[]): Promise<number> {
  const [command] = argv;
  switch (command) {
    case "demo": {
      const { accuracy } = runEngineDemo();
      return accuracy >= 0.9 ? 0 : 1;
    }
    case "info": {
      const { buildInfo, cuda } = await import("../index.js");
      const info = buildInfo();
      console.log(`libtorch ${info.torch}, CUDA build: ${info.cudaBuild}, fused attention: ${info.flashAttention}`);
      const count = cuda.deviceCount();
      for (let i = 0; i < count; i++) console.log(`cuda:${i} ${cuda.deviceName(i)}`);
      return 0;
    }
    case undefined:
    case "help":
    case "--help":
      console.log(usage);
      return 0;
    default:
      console.error(`vlmkit: unknown command '${command}'\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`vlmkit: ${error.message}`);
    process.exit(1);
  },
);
