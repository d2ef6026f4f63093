// Shape, indexing and layout ops: one wrapper per ATen op.
#include "common.h"

using namespace vlmkit;

OP(view) { ENV; return wrap(env, tensorArg(info, 0).view(intListArg(info, 1))); }
OP(reshape) { ENV; return wrap(env, tensorArg(info, 0).reshape(intListArg(info, 1))); }
OP(permute) { ENV; return wrap(env, tensorArg(info, 0).permute(intListArg(info, 1))); }
OP(transpose) { ENV; return wrap(env, tensorArg(info, 0).transpose(intArg(info, 1), intArg(info, 2))); }
OP(cat) { ENV; return wrap(env, at::cat(tensorListArg(info, 0), intArg(info, 1))); }
OP(stack) { ENV; return wrap(env, at::stack(tensorListArg(info, 0), intArg(info, 1))); }
// split(t, sizeOrSizes, dim)
OP(split) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (info[1].IsArray()) return wrapList(env, t.split_with_sizes(intListArg(info, 1), intArg(info, 2)));
  return wrapList(env, t.split(intArg(info, 1), intArg(info, 2)));
}
OP(chunk) { ENV; return wrapList(env, tensorArg(info, 0).chunk(intArg(info, 1), intArg(info, 2))); }
OP(unbind) { ENV; return wrapList(env, tensorArg(info, 0).unbind(intArg(info, 1))); }
OP(narrow) { ENV; return wrap(env, tensorArg(info, 0).narrow(intArg(info, 1), intArg(info, 2), intArg(info, 3))); }
// slice(t, dim, start|null, end|null, step)
OP(slice) {
  ENV;
  return wrap(env, tensorArg(info, 0).slice(intArg(info, 1), c10opt(optIntArg(info, 2)), c10opt(optIntArg(info, 3)), optIntArg(info, 4).value_or(1)));
}
OP(select) { ENV; return wrap(env, tensorArg(info, 0).select(intArg(info, 1), intArg(info, 2))); }
OP(indexSelect) { ENV; return wrap(env, tensorArg(info, 0).index_select(intArg(info, 1), tensorArg(info, 2))); }
// index(t, [idx0|null, idx1|null, ...]): advanced indexing with tensors on leading dims (t[idx0, idx1]).
OP(index) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (!info[1].IsArray()) throw ArgError("argument 1 must be an array of index tensors (null keeps a dim whole)");
  auto array = info[1].As<Napi::Array>();
  c10::List<c10::optional<at::Tensor>> indices;
  for (uint32_t k = 0; k < array.Length(); k++) {
    auto v = array.Get(k);
    if (v.IsNull() || v.IsUndefined()) indices.push_back(c10::nullopt);
    else indices.push_back(tensorOf(v, "index tensor"));
  }
  return wrap(env, at::index(t, indices));
}
// indexPut(t, [idx...], values, accumulate): out-of-place t[idx] = values
OP(indexPut) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (!info[1].IsArray()) throw ArgError("argument 1 must be an array of index tensors (null keeps a dim whole)");
  auto array = info[1].As<Napi::Array>();
  c10::List<c10::optional<at::Tensor>> indices;
  for (uint32_t k = 0; k < array.Length(); k++) {
    auto v = array.Get(k);
    if (v.IsNull() || v.IsUndefined()) indices.push_back(c10::nullopt);
    else indices.push_back(tensorOf(v, "index tensor"));
  }
  return wrap(env, at::index_put(t, indices, tensorArg(info, 2), boolArg(info, 3)));
}
OP(gather) { ENV; return wrap(env, at::gather(tensorArg(info, 0), intArg(info, 1), tensorArg(info, 2))); }
// scatter(t, dim, index, src, srcIsScalar)
OP(scatter) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (boolArg(info, 4)) return wrap(env, at::scatter(t, intArg(info, 1), tensorArg(info, 2), scalarArg(info, 3)));
  return wrap(env, at::scatter(t, intArg(info, 1), tensorArg(info, 2), tensorArg(info, 3)));
}
OP(scatterAdd) { ENV; return wrap(env, at::scatter_add(tensorArg(info, 0), intArg(info, 1), tensorArg(info, 2), tensorArg(info, 3))); }
OP(maskedFill) {
  ENV;
  auto& t = tensorArg(info, 0);
  // libtorch 1.13 on the CPU silently ignores a float mask (and takes integer ones); 2.x wants bool. Require bool on both.
  if (tensorArg(info, 1).scalar_type() != at::kBool) {
    throw ArgError("mask must be a bool tensor, got " + dtypeName(tensorArg(info, 1).scalar_type()) + " (compare first, e.g. mask.gt(0), or call .bool())");
  }
  if (boolArg(info, 3)) return wrap(env, t.masked_fill(tensorArg(info, 1), scalarArg(info, 2)));
  return wrap(env, t.masked_fill(tensorArg(info, 1), tensorArg(info, 2)));
}
OP(maskedSelect) { ENV; return wrap(env, at::masked_select(tensorArg(info, 0), tensorArg(info, 1))); }
// where(cond, a, b, aIsScalar, bIsScalar): a and b each a tensor or a scalar (tensor handles are numbers too)
OP(where) {
  ENV;
  auto& cond = tensorArg(info, 0);
  bool aScalar = boolArg(info, 3);
  bool bScalar = boolArg(info, 4);
  if (aScalar && bScalar) return wrap(env, at::where(cond, scalarArg(info, 1), scalarArg(info, 2)));
  if (aScalar) return wrap(env, at::where(cond, scalarArg(info, 1), tensorArg(info, 2)));
  if (bScalar) return wrap(env, at::where(cond, tensorArg(info, 1), scalarArg(info, 2)));
  return wrap(env, at::where(cond, tensorArg(info, 1), tensorArg(info, 2)));
}
OP(nonzero) { ENV; return wrap(env, at::nonzero(tensorArg(info, 0))); }
OP(expand) { ENV; return wrap(env, tensorArg(info, 0).expand(intListArg(info, 1))); }
OP(repeat) { ENV; return wrap(env, tensorArg(info, 0).repeat(intListArg(info, 1))); }
OP(repeatInterleave) { ENV; return wrap(env, tensorArg(info, 0).repeat_interleave(intArg(info, 1), intArg(info, 2))); }
OP(squeeze) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (isNullish(info, 1)) return wrap(env, t.squeeze());
  return wrap(env, t.squeeze(intArg(info, 1)));
}
OP(unsqueeze) { ENV; return wrap(env, tensorArg(info, 0).unsqueeze(intArg(info, 1))); }
OP(flatten) { ENV; return wrap(env, tensorArg(info, 0).flatten(intArg(info, 1), intArg(info, 2))); }
OP(flip) { ENV; return wrap(env, tensorArg(info, 0).flip(intListArg(info, 1))); }
OP(roll) { ENV; return wrap(env, tensorArg(info, 0).roll(intListArg(info, 1), intListArg(info, 2))); }
OP(tril) { ENV; return wrap(env, tensorArg(info, 0).tril(intArg(info, 1))); }
OP(triu) { ENV; return wrap(env, tensorArg(info, 0).triu(intArg(info, 1))); }
// pad(t, pads (last dim first, as torch.nn.functional.pad), mode, value)
OP(pad) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto pads = intListArg(info, 1);
  auto mode = isNullish(info, 2) ? std::string("constant") : stringArg(info, 2);
  double value = optDoubleArg(info, 3).value_or(0.0);
  if (mode == "constant") return wrap(env, at::constant_pad_nd(t, pads, value));
  size_t spatial = pads.size() / 2;
  if (mode == "reflect") {
    if (spatial == 1) return wrap(env, at::reflection_pad1d(t, pads));
    if (spatial == 2) return wrap(env, at::reflection_pad2d(t, pads));
    if (spatial == 3) return wrap(env, at::reflection_pad3d(t, pads));
  }
  if (mode == "replicate") {
    if (spatial == 1) return wrap(env, at::replication_pad1d(t, pads));
    if (spatial == 2) return wrap(env, at::replication_pad2d(t, pads));
    if (spatial == 3) return wrap(env, at::replication_pad3d(t, pads));
  }
  throw ArgError("unsupported pad mode '" + mode + "' for " + std::to_string(spatial) + " padded dims (use constant, reflect or replicate)");
}
// interpolate(t [N,C,H,W], [outH, outW], mode, alignCorners, antialias)
OP(interpolate) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto size = intListArg(info, 1);
  auto mode = stringArg(info, 2);
  bool alignCorners = boolArg(info, 3);
  bool antialias = boolArg(info, 4);
  if (t.dim() != 4 || size.size() != 2) throw ArgError("interpolate expects a 4-d [N, C, H, W] input and [outH, outW], got " + c10::str(t.sizes()));
  if (mode == "nearest") return wrap(env, at::upsample_nearest2d(t, size));
  if (mode == "bilinear") {
    if (antialias) return wrap(env, at::_upsample_bilinear2d_aa(t, size, alignCorners));
    return wrap(env, at::upsample_bilinear2d(t, size, alignCorners));
  }
  if (mode == "bicubic") {
    if (antialias) return wrap(env, at::_upsample_bicubic2d_aa(t, size, alignCorners));
    return wrap(env, at::upsample_bicubic2d(t, size, alignCorners));
  }
  throw ArgError("unsupported interpolate mode '" + mode + "' (use nearest, bilinear or bicubic)");
}
// In-place ops used by optimizers, caches and initialisation.
OP(copy_) {
  ENV;
  tensorArg(info, 0).copy_(tensorArg(info, 1), boolArg(info, 2));
  return env.Undefined();
}
OP(fill_) {
  ENV;
  tensorArg(info, 0).fill_(scalarArg(info, 1));
  return env.Undefined();
}
OP(zero_) {
  ENV;
  tensorArg(info, 0).zero_();
  return env.Undefined();
}
OP(uniform_) {
  ENV;
  tensorArg(info, 0).uniform_(doubleArg(info, 1), doubleArg(info, 2));
  return env.Undefined();
}
OP(normal_) {
  ENV;
  tensorArg(info, 0).normal_(doubleArg(info, 1), doubleArg(info, 2));
  return env.Undefined();
}
OP(indexCopy_) {
  ENV;
  tensorArg(info, 0).index_copy_(intArg(info, 1), tensorArg(info, 2), tensorArg(info, 3));
  return env.Undefined();
}

namespace vlmkit {
void initShapeOps(Napi::Env env, Napi::Object exports) {
  DEF(view); DEF(reshape); DEF(permute); DEF(transpose); DEF(cat); DEF(stack); DEF(split); DEF(chunk); DEF(unbind);
  DEF(narrow); DEF(slice); DEF(select); DEF(indexSelect); DEF(index); DEF(indexPut); DEF(gather); DEF(scatter); DEF(scatterAdd);
  DEF(maskedFill); DEF(maskedSelect); DEF(where); DEF(nonzero); DEF(expand); DEF(repeat); DEF(repeatInterleave);
  DEF(squeeze); DEF(unsqueeze); DEF(flatten); DEF(flip); DEF(roll); DEF(tril); DEF(triu); DEF(pad); DEF(interpolate);
  DEF(copy_); DEF(fill_); DEF(zero_); DEF(uniform_); DEF(normal_); DEF(indexCopy_);
}
}  // namespace vlmkit
