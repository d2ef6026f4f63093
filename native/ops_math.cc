// Elementwise math, comparisons, reductions and matrix products.
#include "common.h"

using namespace vlmkit;

namespace {

// A binary op whose second operand is a tensor or a JS number/boolean. Tensor handles are numbers too, so
// the caller says which with a flag argument at scalarFlag.
template <class TensorFn, class ScalarFn>
Napi::Value binary(const Napi::CallbackInfo& info, size_t scalarFlag, TensorFn onTensor, ScalarFn onScalar) {
  auto& a = tensorArg(info, 0);
  if (boolArg(info, scalarFlag)) return wrap(info.Env(), onScalar(a, scalarArg(info, 1)));
  return wrap(info.Env(), onTensor(a, tensorArg(info, 1)));
}

// Reduction dims: null means all of them.
std::vector<int64_t> dimsOrAll(const Napi::CallbackInfo& info, size_t i, const at::Tensor& t) {
  auto dims = optIntListArg(info, i);
  if (dims) return *dims;
  std::vector<int64_t> all(t.dim());
  for (int64_t d = 0; d < t.dim(); d++) all[d] = d;
  return all;
}

}  // namespace

#define BINARY(name, expr)                                                                               \
  OP(name) {                                                                                            \
    return binary(                                                                                      \
        info, 2, [&](const at::Tensor& a, const at::Tensor& b) { return expr; },                           \
        [&](const at::Tensor& a, const at::Scalar& b) { return expr; });                                \
  }

// add(a, b, alpha, bIsScalar) and sub(a, b, alpha, bIsScalar): a + alpha * b
OP(add) {
  at::Scalar alpha = isNullish(info, 2) ? at::Scalar(1) : scalarArg(info, 2);
  return binary(
      info, 3, [&](const at::Tensor& a, const at::Tensor& b) { return at::add(a, b, alpha); },
      [&](const at::Tensor& a, const at::Scalar& b) { return at::add(a, b, alpha); });
}
OP(sub) {
  at::Scalar alpha = isNullish(info, 2) ? at::Scalar(1) : scalarArg(info, 2);
  return binary(
      info, 3, [&](const at::Tensor& a, const at::Tensor& b) { return at::sub(a, b, alpha); },
      [&](const at::Tensor& a, const at::Scalar& b) { return at::sub(a, b, alpha); });
}
BINARY(mul, at::mul(a, b))
BINARY(div, at::div(a, b))
BINARY(pow, at::pow(a, b))
BINARY(remainder, at::remainder(a, b))
BINARY(eq, at::eq(a, b))
BINARY(ne, at::ne(a, b))
BINARY(lt, at::lt(a, b))
BINARY(le, at::le(a, b))
BINARY(gt, at::gt(a, b))
BINARY(ge, at::ge(a, b))
BINARY(floorDivide, at::floor_divide(a, b))
OP(rsub) { ENV; return wrap(env, at::rsub(tensorArg(info, 0), scalarArg(info, 1))); }  // b - a
OP(minimum) { ENV; return wrap(env, at::minimum(tensorArg(info, 0), tensorArg(info, 1))); }
OP(maximum) { ENV; return wrap(env, at::maximum(tensorArg(info, 0), tensorArg(info, 1))); }
OP(logicalAnd) { ENV; return wrap(env, at::logical_and(tensorArg(info, 0), tensorArg(info, 1))); }
OP(logicalOr) { ENV; return wrap(env, at::logical_or(tensorArg(info, 0), tensorArg(info, 1))); }
OP(logicalXor) { ENV; return wrap(env, at::logical_xor(tensorArg(info, 0), tensorArg(info, 1))); }
OP(atan2) { ENV; return wrap(env, at::atan2(tensorArg(info, 0), tensorArg(info, 1))); }
OP(isclose) {
  ENV;
  return wrap(env, at::isclose(tensorArg(info, 0), tensorArg(info, 1), doubleArg(info, 2), doubleArg(info, 3), boolArg(info, 4)));
}

// Unary ops share one wrapper shape: unaryOp(name, t).
#define UNARY(name, expr) \
  OP(name) {              \
    ENV;                  \
    auto& a = tensorArg(info, 0); \
    return wrap(env, expr); \
  }
UNARY(neg, at::neg(a))
UNARY(exp, at::exp(a))
UNARY(log, at::log(a))
UNARY(log1p, at::log1p(a))
UNARY(expm1, at::expm1(a))
UNARY(log2, at::log2(a))
UNARY(sqrt, at::sqrt(a))
UNARY(rsqrt, at::rsqrt(a))
UNARY(abs, at::abs(a))
UNARY(sin, at::sin(a))
UNARY(cos, at::cos(a))
UNARY(tan, at::tan(a))
UNARY(tanh, at::tanh(a))
UNARY(sigmoid, at::sigmoid(a))
UNARY(logSigmoid, at::log_sigmoid(a))
UNARY(relu, at::relu(a))
UNARY(silu, at::silu(a))
UNARY(erf, at::erf(a))
UNARY(floor, at::floor(a))
UNARY(ceil, at::ceil(a))
UNARY(round, at::round(a))
UNARY(trunc, at::trunc(a))
UNARY(sign, at::sign(a))
UNARY(reciprocal, at::reciprocal(a))
UNARY(square, at::square(a))
UNARY(logicalNot, at::logical_not(a))
UNARY(isnan, at::isnan(a))
UNARY(isinf, at::isinf(a))
UNARY(isfinite, at::isfinite(a))
UNARY(softplus, at::softplus(a, 1, 20))
UNARY(mish, at::mish(a))

OP(clamp) {
  ENV;
  auto& t = tensorArg(info, 0);
  c10::optional<at::Scalar> lo, hi;
  if (!isNullish(info, 1)) lo = scalarArg(info, 1);
  if (!isNullish(info, 2)) hi = scalarArg(info, 2);
  if (!lo && !hi) throw ArgError("clamp needs a min, a max, or both");
  return wrap(env, at::clamp(t, lo, hi));
}
OP(nanToNum) {
  ENV;
  return wrap(env, at::nan_to_num(tensorArg(info, 0), c10opt(optDoubleArg(info, 1)), c10opt(optDoubleArg(info, 2)), c10opt(optDoubleArg(info, 3))));
}
OP(lerp) { ENV; return wrap(env, at::lerp(tensorArg(info, 0), tensorArg(info, 1), scalarArg(info, 2))); }

// ---- reductions: (t, dims|null, keepdim, dtype|null) ----
OP(sum) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto dtype = c10opt(optDtypeArg(info, 3));
  if (isNullish(info, 1) && !boolArg(info, 2)) return wrap(env, at::sum(t, dtype));
  return wrap(env, at::sum(t, dimsOrAll(info, 1, t), boolArg(info, 2), dtype));
}
OP(mean) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto dtype = c10opt(optDtypeArg(info, 3));
  if (isNullish(info, 1) && !boolArg(info, 2)) return wrap(env, at::mean(t, dtype));
  return wrap(env, at::mean(t, dimsOrAll(info, 1, t), boolArg(info, 2), dtype));
}
OP(prod) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (isNullish(info, 1)) return wrap(env, at::prod(t));
  return wrap(env, at::prod(t, intArg(info, 1), boolArg(info, 2)));
}
// var/std(t, dims|null, unbiased, keepdim)
OP(var) {
  ENV;
  auto& t = tensorArg(info, 0);
  return wrap(env, at::var(t, dimsOrAll(info, 1, t), boolArg(info, 2, true), boolArg(info, 3)));
}
OP(std) {
  ENV;
  auto& t = tensorArg(info, 0);
  return wrap(env, at::std(t, dimsOrAll(info, 1, t), boolArg(info, 2, true), boolArg(info, 3)));
}
OP(amax) {
  ENV;
  auto& t = tensorArg(info, 0);
  return wrap(env, at::amax(t, dimsOrAll(info, 1, t), boolArg(info, 2)));
}
OP(amin) {
  ENV;
  auto& t = tensorArg(info, 0);
  return wrap(env, at::amin(t, dimsOrAll(info, 1, t), boolArg(info, 2)));
}
// max/min(t, dim, keepdim) -> [values, indices]; with no dim, the overall value
OP(max) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (isNullish(info, 1)) return wrap(env, at::max(t));
  auto [values, indices] = at::max(t, intArg(info, 1), boolArg(info, 2));
  return wrapList(env, {values, indices});
}
OP(min) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (isNullish(info, 1)) return wrap(env, at::min(t));
  auto [values, indices] = at::min(t, intArg(info, 1), boolArg(info, 2));
  return wrapList(env, {values, indices});
}
OP(argmax) { ENV; return wrap(env, at::argmax(tensorArg(info, 0), c10opt(optIntArg(info, 1)), boolArg(info, 2))); }
OP(argmin) { ENV; return wrap(env, at::argmin(tensorArg(info, 0), c10opt(optIntArg(info, 1)), boolArg(info, 2))); }
// topk(t, k, dim, largest, sorted) -> [values, indices]
OP(topk) {
  ENV;
  auto [values, indices] = at::topk(tensorArg(info, 0), intArg(info, 1), intArg(info, 2), boolArg(info, 3, true), boolArg(info, 4, true));
  return wrapList(env, {values, indices});
}
// sort(t, dim, descending, stable) -> [values, indices]
OP(sort) {
  ENV;
  auto [values, indices] = at::sort(tensorArg(info, 0), c10::optional<bool>(boolArg(info, 3)), intArg(info, 1), boolArg(info, 2));
  return wrapList(env, {values, indices});
}
OP(cumsum) { ENV; return wrap(env, at::cumsum(tensorArg(info, 0), intArg(info, 1), c10opt(optDtypeArg(info, 2)))); }
OP(cumprod) { ENV; return wrap(env, at::cumprod(tensorArg(info, 0), intArg(info, 1), c10opt(optDtypeArg(info, 2)))); }
OP(softmax) { ENV; return wrap(env, at::softmax(tensorArg(info, 0), intArg(info, 1), c10opt(optDtypeArg(info, 2)))); }
OP(logSoftmax) { ENV; return wrap(env, at::log_softmax(tensorArg(info, 0), intArg(info, 1), c10opt(optDtypeArg(info, 2)))); }
OP(logsumexp) {
  ENV;
  auto& t = tensorArg(info, 0);
  return wrap(env, at::logsumexp(t, dimsOrAll(info, 1, t), boolArg(info, 2)));
}
// norm(t, p, dims|null, keepdim)
OP(norm) {
  ENV;
  auto& t = tensorArg(info, 0);
  return wrap(env, at::norm(t, c10::optional<at::Scalar>(scalarArg(info, 1)), dimsOrAll(info, 2, t), boolArg(info, 3)));
}
OP(all) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (isNullish(info, 1)) return wrap(env, at::all(t));
  return wrap(env, at::all(t, intArg(info, 1), boolArg(info, 2)));
}
OP(any) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (isNullish(info, 1)) return wrap(env, at::any(t));
  return wrap(env, at::any(t, intArg(info, 1), boolArg(info, 2)));
}
OP(countNonzero) { ENV; return wrap(env, at::count_nonzero(tensorArg(info, 0), c10opt(optIntArg(info, 1)))); }
OP(equal) { ENV; return Napi::Boolean::New(env, at::equal(tensorArg(info, 0), tensorArg(info, 1))); }
OP(allclose) {
  ENV;
  return Napi::Boolean::New(env, at::allclose(tensorArg(info, 0), tensorArg(info, 1), doubleArg(info, 2), doubleArg(info, 3)));
}

// ---- matrix products ----
OP(matmul) { ENV; return wrap(env, at::matmul(tensorArg(info, 0), tensorArg(info, 1))); }
OP(mm) { ENV; return wrap(env, at::mm(tensorArg(info, 0), tensorArg(info, 1))); }
OP(bmm) { ENV; return wrap(env, at::bmm(tensorArg(info, 0), tensorArg(info, 1))); }
// addmm(bias, a, b, beta, alpha): beta * bias + alpha * (a @ b)
OP(addmm) {
  ENV;
  at::Scalar beta = isNullish(info, 3) ? at::Scalar(1) : scalarArg(info, 3);
  at::Scalar alpha = isNullish(info, 4) ? at::Scalar(1) : scalarArg(info, 4);
  return wrap(env, at::addmm(tensorArg(info, 0), tensorArg(info, 1), tensorArg(info, 2), beta, alpha));
}
OP(outer) { ENV; return wrap(env, at::outer(tensorArg(info, 0), tensorArg(info, 1))); }
OP(einsum) { ENV; return wrap(env, at::einsum(stringArg(info, 0), tensorListArg(info, 1))); }

namespace vlmkit {
void initMathOps(Napi::Env env, Napi::Object exports) {
  DEF(add); DEF(sub); DEF(mul); DEF(div); DEF(pow); DEF(remainder); DEF(eq); DEF(ne); DEF(lt); DEF(le); DEF(gt); DEF(ge);
  DEF(floorDivide); DEF(rsub); DEF(minimum); DEF(maximum); DEF(logicalAnd); DEF(logicalOr); DEF(logicalXor); DEF(atan2); DEF(isclose);
  DEF(neg); DEF(exp); DEF(log); DEF(log1p); DEF(expm1); DEF(log2); DEF(sqrt); DEF(rsqrt); DEF(abs); DEF(sin); DEF(cos); DEF(tan);
  DEF(tanh); DEF(sigmoid); DEF(logSigmoid); DEF(relu); DEF(silu); DEF(erf); DEF(floor); DEF(ceil); DEF(round); DEF(trunc);
  DEF(sign); DEF(reciprocal); DEF(square); DEF(logicalNot); DEF(isnan); DEF(isinf); DEF(isfinite); DEF(softplus); DEF(mish);
  DEF(clamp); DEF(nanToNum); DEF(lerp);
  DEF(sum); DEF(mean); DEF(prod); DEF(var); DEF(std); DEF(amax); DEF(amin); DEF(max); DEF(min); DEF(argmax); DEF(argmin);
  DEF(topk); DEF(sort); DEF(cumsum); DEF(cumprod); DEF(softmax); DEF(logSoftmax); DEF(logsumexp); DEF(norm); DEF(all); DEF(any);
  DEF(countNonzero); DEF(equal); DEF(allclose);
  DEF(matmul); DEF(mm); DEF(bmm); DEF(addmm); DEF(outer); DEF(einsum);
}
}  // namespace vlmkit
