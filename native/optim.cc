// Optimizer steps over whole parameter lists: fused AdamW where libtorch has it (CUDA, >= 2.0),
// else the multi-tensor (_foreach) formulation PyTorch uses; SGD with momentum; gradient clipping.
#include "common.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <map>

using namespace vlmkit;

namespace {

struct AdamWConfig {
  double lr, beta1, beta2, eps, weightDecay;
};

// The multi-tensor AdamW update (torch.optim.AdamW with foreach=True, capturable=False).
void adamwForeach(std::vector<at::Tensor>& params, std::vector<at::Tensor>& grads, std::vector<at::Tensor>& expAvg,
                  std::vector<at::Tensor>& expAvgSq, std::vector<at::Tensor>& steps, const AdamWConfig& c) {
  at::_foreach_add_(steps, 1);
  if (c.weightDecay != 0) at::_foreach_mul_(params, 1 - c.lr * c.weightDecay);
  at::_foreach_mul_(expAvg, c.beta1);
  at::_foreach_add_(expAvg, grads, 1 - c.beta1);
  at::_foreach_mul_(expAvgSq, c.beta2);
  at::_foreach_addcmul_(expAvgSq, grads, grads, 1 - c.beta2);
  std::vector<at::Scalar> stepSizes, bias2Sqrt;
  for (auto& s : steps) {
    double step = s.item<double>();
    double bias1 = 1 - std::pow(c.beta1, step);
    double bias2 = 1 - std::pow(c.beta2, step);
    stepSizes.push_back(-c.lr / bias1);
    bias2Sqrt.push_back(std::sqrt(bias2));
  }
  auto denom = at::_foreach_sqrt(expAvgSq);
  at::_foreach_div_(denom, bias2Sqrt);
  at::_foreach_add_(denom, c.eps);
  at::_foreach_addcdiv_(params, expAvg, denom, stepSizes);
}

}  // namespace

// adamwStep(params[], grads[], expAvg[], expAvgSq[], steps[] (float32 scalars, one per param), lr, beta1, beta2, eps, weightDecay, fused)
OP(adamwStep) {
  ENV;
  auto params = tensorListArg(info, 0);
  auto grads = tensorListArg(info, 1);
  auto expAvg = tensorListArg(info, 2);
  auto expAvgSq = tensorListArg(info, 3);
  auto steps = tensorListArg(info, 4);
  AdamWConfig c{doubleArg(info, 5), doubleArg(info, 6), doubleArg(info, 7), doubleArg(info, 8), doubleArg(info, 9)};
  bool fused = boolArg(info, 10, true);
  size_t n = params.size();
  if (grads.size() != n || expAvg.size() != n || expAvgSq.size() != n || steps.size() != n) {
    throw ArgError("params, grads, expAvg, expAvgSq and steps must have the same length");
  }
  at::NoGradGuard noGrad;
  // Group by (device, dtype): the fused and foreach kernels each take one device and dtype at a time.
  std::map<std::pair<std::string, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < n; i++) groups[{params[i].device().str(), static_cast<int>(params[i].scalar_type())}].push_back(i);
  for (auto& [key, index] : groups) {
    std::vector<at::Tensor> p, g, m, v, s;
    for (size_t i : index) {
      p.push_back(params[i]);
      g.push_back(grads[i]);
      m.push_back(expAvg[i]);
      v.push_back(expAvgSq[i]);
      s.push_back(steps[i]);
    }
#if VLMKIT_TORCH_AT_LEAST(2, 0)
    if (fused && p[0].is_cuda()) {
      at::_foreach_add_(s, 1);
      at::_fused_adamw_(p, g, m, v, {}, s, c.lr, c.beta1, c.beta2, c.weightDecay, c.eps, false, false, c10::nullopt, c10::nullopt);
      continue;
    }
#endif
    adamwForeach(p, g, m, v, s, c);
  }
  return env.Undefined();
}
OP(hasFusedAdamW) { ENV; return Napi::Boolean::New(env, VLMKIT_TORCH_AT_LEAST(2, 0) != 0); }

// sgdStep(params[], grads[], momentumBuffers (Tensor|null)[], lr, momentum, dampening, weightDecay, nesterov)
// -> the momentum buffers to keep (created on the first step, as torch.optim.SGD does).
OP(sgdStep) {
  ENV;
  auto params = tensorListArg(info, 0);
  auto grads = tensorListArg(info, 1);
  if (!info[2].IsArray()) throw ArgError("argument 2 must be an array of momentum buffers (Tensor or null)");
  auto buffersIn = info[2].As<Napi::Array>();
  double lr = doubleArg(info, 3), momentum = doubleArg(info, 4), dampening = doubleArg(info, 5), weightDecay = doubleArg(info, 6);
  bool nesterov = boolArg(info, 7);
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> buffersOut;
  for (size_t i = 0; i < params.size(); i++) {
    auto d = grads[i];
    if (weightDecay != 0) d = d.add(params[i], weightDecay);
    if (momentum != 0) {
      auto value = buffersIn.Get(i);
      at::Tensor buf;
      if (value.IsNull() || value.IsUndefined()) {
        buf = d.clone();
      } else {
        buf = tensorOf(value, "momentum buffer");
        buf.mul_(momentum).add_(d, 1 - dampening);
      }
      d = nesterov ? d.add(buf, momentum) : buf;
      buffersOut.push_back(buf);
    } else {
      buffersOut.push_back(at::Tensor());
    }
    params[i].add_(d, -lr);
  }
  return wrapList(env, buffersOut);
}

// clipGradNorm(grads[], maxNorm, normType) -> total norm (a tensor; no host sync), grads scaled in place
// by min(1, maxNorm / (norm + 1e-6)), as torch.nn.utils.clip_grad_norm_.
OP(clipGradNorm) {
  ENV;
  auto grads = tensorListArg(info, 0);
  double maxNorm = doubleArg(info, 1);
  double normType = optDoubleArg(info, 2).value_or(2.0);
  if (grads.empty()) return wrap(env, at::zeros({}, at::kFloat));
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> norms;
  for (auto& g : grads) norms.push_back(std::isinf(normType) ? g.abs().max().to(at::kFloat) : at::norm(g.to(at::kFloat), normType));
  auto stacked = at::stack(norms);
  auto total = std::isinf(normType) ? stacked.max() : at::norm(stacked, normType);
  auto coef = (maxNorm / (total + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g.mul_(coef.to(g.device()).to(g.scalar_type()));
  return wrap(env, total);
}

namespace vlmkit {
void initOptim(Napi::Env env, Napi::Object exports) {
  DEF(adamwStep); DEF(hasFusedAdamW); DEF(sgdStep); DEF(clipGradNorm);
}
}  // namespace vlmkit
