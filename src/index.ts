// vlmkit: adapt vision-language models to real tasks from TypeScript.
export * from "./torch/index.js";
export * from "./models/index.js";
