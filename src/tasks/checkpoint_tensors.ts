// Checkpoint tensors named "<module>.<parameter>" ("head.fc.weight", "model.lm_head.weight") copied into the live
// parameters of a task's modules.
import { noGrad, type Tensor } from "../torch/index.js";
import type { Module } from "../torch/nn/index.js";

/** Copies "head.x" / "model.y" tensors into the live parameters of those modules; unknown names and wrong shapes are errors. */
export function loadNamedTensors(modules: Record<string, Module>, tensors: Map<string, Tensor>): void {
  noGrad(() => {
    for (const [name, value] of tensors) {
      const dot = name.indexOf(".");
      const module = modules[name.slice(0, dot)];
      if (!module) throw new Error(`checkpoint tensor '${name}' belongs to no module of this task (${Object.keys(modules).join(", ")})`);
      const target = module.getParameter(name.slice(dot + 1));
      if (target.shape.join(",") !== value.shape.join(",")) throw new Error(`checkpoint tensor '${name}' is [${value.shape}] but the model's is [${target.shape}]`);
      target.copy_(value);
    }
  });
}
