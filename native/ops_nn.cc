// Neural-network ops: linear and convolution, norms, activations, losses, attention.
#include "common.h"

#include <ATen/core/grad_mode.h>

using namespace vlmkit;

namespace {

int64_t reductionArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info, i)) return at::Reduction::Mean;
  auto name = stringArg(info, i);
  if (name == "mean") return at::Reduction::Mean;
  if (name == "sum") return at::Reduction::Sum;
  if (name == "none") return at::Reduction::None;
  throw ArgError("reduction must be 'mean', 'sum' or 'none', got '" + name + "'");
}

c10::optional<at::Tensor> optT(const Napi::CallbackInfo& info, size_t i) { return c10opt(optTensorArg(info, i)); }

// Scaled dot-product attention written out, for libtorch builds without the fused op (1.13) and as
// the definition the fused kernels are checked against. Causal means a top-left aligned lower triangle.
at::Tensor attentionReference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const c10::optional<at::Tensor>& mask,
                              double dropout, bool causal, double scale) {
  auto scores = at::matmul(q, k.transpose(-2, -1)) * scale;
  if (causal) {
    auto keep = at::ones({q.size(-2), k.size(-2)}, q.options().dtype(at::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask) {
    if (mask->scalar_type() == at::kBool) scores = scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity());
    else scores = scores + *mask;
  }
  auto weights = at::softmax(scores, -1);
  if (dropout > 0) weights = at::dropout(weights, dropout, true);
  return at::matmul(weights, v);
}

// Checks 4-d q [B, Hq, L, D], k and v [B, Hkv, S, D] and repeats each kv head Hq / Hkv times (grouped-query
// attention), so that both the fused op and the reference see Hq heads everywhere.
void expandKvHeads(const at::Tensor& q, at::Tensor& k, at::Tensor& v) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) {
    throw ArgError("expects 4-d q, k, v [batch, heads, seq, head_dim], got " + c10::str(q.sizes()) + ", " + c10::str(k.sizes()) + ", " + c10::str(v.sizes()));
  }
  int64_t qHeads = q.size(1), kvHeads = k.size(1);
  if (kvHeads != v.size(1) || qHeads % kvHeads != 0) {
    throw ArgError("query heads (" + std::to_string(qHeads) + ") must be a multiple of key/value heads (" + std::to_string(kvHeads) + ", " +
                   std::to_string(v.size(1)) + ")");
  }
  if (qHeads != kvHeads) {
    int64_t rep = qHeads / kvHeads;
    k = k.unsqueeze(2).expand({k.size(0), kvHeads, rep, k.size(2), k.size(3)}).reshape({k.size(0), qHeads, k.size(2), k.size(3)});
    v = v.unsqueeze(2).expand({v.size(0), kvHeads, rep, v.size(2), v.size(3)}).reshape({v.size(0), qHeads, v.size(2), v.size(3)});
  }
}

}  // namespace

OP(linear) { ENV; return wrap(env, at::linear(tensorArg(info, 0), tensorArg(info, 1), optT(info, 2))); }
// conv2d/conv3d(x, w, b|null, stride[], padding[], dilation[], groups)
OP(conv2d) {
  ENV;
  return wrap(env, at::conv2d(tensorArg(info, 0), tensorArg(info, 1), optT(info, 2), intListArg(info, 3), intListArg(info, 4),
                              intListArg(info, 5), intArg(info, 6)));
}
OP(conv3d) {
  ENV;
  return wrap(env, at::conv3d(tensorArg(info, 0), tensorArg(info, 1), optT(info, 2), intListArg(info, 3), intListArg(info, 4),
                              intListArg(info, 5), intArg(info, 6)));
}
OP(conv1d) {
  ENV;
  return wrap(env, at::conv1d(tensorArg(info, 0), tensorArg(info, 1), optT(info, 2), intListArg(info, 3), intListArg(info, 4),
                              intListArg(info, 5), intArg(info, 6)));
}
OP(avgPool2d) {
  ENV;
  return wrap(env, at::avg_pool2d(tensorArg(info, 0), intListArg(info, 1), intListArg(info, 2), intListArg(info, 3)));
}
OP(adaptiveAvgPool2d) { ENV; return wrap(env, at::adaptive_avg_pool2d(tensorArg(info, 0), intListArg(info, 1))); }
// layerNorm(x, normalizedShape, w|null, b|null, eps)
OP(layerNorm) {
  ENV;
  return wrap(env, at::layer_norm(tensorArg(info, 0), intListArg(info, 1), optT(info, 2), optT(info, 3), doubleArg(info, 4)));
}
// groupNorm(x, groups, w|null, b|null, eps)
OP(groupNorm) {
  ENV;
  return wrap(env, at::group_norm(tensorArg(info, 0), intArg(info, 1), optT(info, 2), optT(info, 3), doubleArg(info, 4)));
}
// rmsNorm(x, w|null, eps): computed in (at least) float32 and cast back, as transformers' LlamaRMSNorm does.
OP(rmsNorm) {
  ENV;
  auto& x = tensorArg(info, 0);
  auto weight = optTensorArg(info, 1);
  double eps = doubleArg(info, 2);
  auto h = x.to(at::promote_types(x.scalar_type(), at::kFloat));
  h = h * at::rsqrt(h.pow(2).mean(-1, true) + eps);
  h = h.to(x.scalar_type());
  return wrap(env, weight ? *weight * h : h);
}
// gelu(x, approximate: "none" | "tanh")
OP(gelu) {
  ENV;
  std::string approximate = isNullish(info, 1) ? "none" : stringArg(info, 1);
  if (approximate != "none" && approximate != "tanh") throw ArgError("gelu approximate must be 'none' or 'tanh', got '" + approximate + "'");
  return wrap(env, at::gelu(tensorArg(info, 0), approximate));
}
// quick_gelu as in CLIP: x * sigmoid(1.702 x)
OP(quickGelu) {
  ENV;
  auto& x = tensorArg(info, 0);
  return wrap(env, x * at::sigmoid(x * 1.702));
}
OP(dropout) { ENV; return wrap(env, at::dropout(tensorArg(info, 0), doubleArg(info, 1), boolArg(info, 2))); }
// embedding(weight, indices, paddingIdx|null)
OP(embedding) { ENV; return wrap(env, at::embedding(tensorArg(info, 0), tensorArg(info, 1), optIntArg(info, 2).value_or(-1))); }
OP(oneHot) { ENV; return wrap(env, at::one_hot(tensorArg(info, 0), intArg(info, 1))); }
// crossEntropy(logits [N, C] or [N, C, ...], target, weight|null, reduction, ignoreIndex, labelSmoothing)
OP(crossEntropy) {
  ENV;
  return wrap(env, at::cross_entropy_loss(tensorArg(info, 0), tensorArg(info, 1), optT(info, 2), reductionArg(info, 3),
                                          optIntArg(info, 4).value_or(-100), optDoubleArg(info, 5).value_or(0.0)));
}
// nllLoss(logProbs, target, weight|null, reduction, ignoreIndex)
OP(nllLoss) {
  ENV;
  return wrap(env, at::nll_loss_nd(tensorArg(info, 0), tensorArg(info, 1), optT(info, 2), reductionArg(info, 3), optIntArg(info, 4).value_or(-100)));
}
// binaryCrossEntropyWithLogits(x, target, weight|null, posWeight|null, reduction)
OP(binaryCrossEntropyWithLogits) {
  ENV;
  return wrap(env, at::binary_cross_entropy_with_logits(tensorArg(info, 0), tensorArg(info, 1), optT(info, 2), optT(info, 3), reductionArg(info, 4)));
}
OP(l1Loss) { ENV; return wrap(env, at::l1_loss(tensorArg(info, 0), tensorArg(info, 1), reductionArg(info, 2))); }
OP(mseLoss) { ENV; return wrap(env, at::mse_loss(tensorArg(info, 0), tensorArg(info, 1), reductionArg(info, 2))); }
OP(smoothL1Loss) {
  ENV;
  return wrap(env, at::smooth_l1_loss(tensorArg(info, 0), tensorArg(info, 1), reductionArg(info, 2), optDoubleArg(info, 3).value_or(1.0)));
}
// normalize(x, p, dim, eps): x / max(||x||_p, eps), as torch.nn.functional.normalize
OP(normalize) {
  ENV;
  auto& x = tensorArg(info, 0);
  auto norm = at::norm(x, c10::optional<at::Scalar>(scalarArg(info, 1)), {intArg(info, 2)}, true);
  return wrap(env, x / norm.clamp_min(doubleArg(info, 3)).expand_as(x));
}
OP(cosineSimilarity) {
  ENV;
  return wrap(env, at::cosine_similarity(tensorArg(info, 0), tensorArg(info, 1), intArg(info, 2), doubleArg(info, 3)));
}
// scaledDotProductAttention(q [B,Hq,L,D], k [B,Hkv,S,D], v, mask|null (bool: true = attend, or additive),
//                           dropoutP, isCausal, scale|null). Grouped-query heads (Hq a multiple of Hkv) are expanded.
OP(scaledDotProductAttention) {
  ENV;
  auto q = tensorArg(info, 0);
  auto k = tensorArg(info, 1);
  auto v = tensorArg(info, 2);
  auto mask = optT(info, 3);
  double dropout = optDoubleArg(info, 4).value_or(0.0);
  bool causal = boolArg(info, 5);
  auto scale = optDoubleArg(info, 6);
  expandKvHeads(q, k, v);
  if (causal && mask) throw ArgError("pass either isCausal or a mask, not both (fold the causal part into the mask)");
  double effectiveScale = scale.value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
#if VLMKIT_TORCH_AT_LEAST(2, 1)
  // Not every fused kernel differentiates the mask (CPU flash does not): a learnable additive bias takes the written-out path.
  bool maskNeedsGrad = mask && mask->requires_grad() && at::GradMode::is_enabled();
  if (!maskNeedsGrad) return wrap(env, at::scaled_dot_product_attention(q, k, v, mask, dropout, causal, effectiveScale));
#endif
  return wrap(env, attentionReference(q, k, v, mask, dropout, causal, effectiveScale));
}
// The written-out attention, available on every build (used to check the fused kernels).
OP(scaledDotProductAttentionReference) {
  ENV;
  auto& q = tensorArg(info, 0);
  auto k = tensorArg(info, 1);
  auto v = tensorArg(info, 2);
  expandKvHeads(q, k, v);
  auto scale = optDoubleArg(info, 6).value_or(1.0 / std::sqrt(static_cast<double>(q.size(-1))));
  return wrap(env, attentionReference(q, k, v, optT(info, 3), optDoubleArg(info, 4).value_or(0.0), boolArg(info, 5), scale));
}

namespace vlmkit {
void initNnOps(Napi::Env env, Napi::Object exports) {
  DEF(linear); DEF(conv1d); DEF(conv2d); DEF(conv3d); DEF(avgPool2d); DEF(adaptiveAvgPool2d); DEF(layerNorm); DEF(groupNorm); DEF(rmsNorm);
  DEF(gelu); DEF(quickGelu); DEF(dropout); DEF(embedding); DEF(oneHot); DEF(crossEntropy); DEF(nllLoss);
  DEF(binaryCrossEntropyWithLogits); DEF(l1Loss); DEF(mseLoss); DEF(smoothL1Loss); DEF(normalize); DEF(cosineSimilarity);
  DEF(scaledDotProductAttention); DEF(scaledDotProductAttentionReference);
}
}  // namespace vlmkit
