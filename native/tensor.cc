// Tensor handles, argument conversion, creation, host transfer and tensor properties.
#include "common.h"

#include <ATen/Parallel.h>

#include <cstring>
#include <unordered_map>

namespace vlmkit {

std::atomic<int64_t> g_liveTensors{0};

// The live-tensor table: slots of released tensors are reused (the JS layer never passes a slot after
// disposing it). Everything runs on the JS thread.
static std::vector<at::Tensor> g_slots;
static std::vector<int32_t> g_freeSlots;

Napi::Value wrap(Napi::Env env, at::Tensor tensor) {
  if (!tensor.defined()) return env.Null();
  int32_t slot;
  if (!g_freeSlots.empty()) {
    slot = g_freeSlots.back();
    g_freeSlots.pop_back();
    g_slots[slot] = std::move(tensor);
  } else {
    slot = static_cast<int32_t>(g_slots.size());
    g_slots.push_back(std::move(tensor));
  }
  g_liveTensors++;
  return Napi::Number::New(env, slot);
}

Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& tensors) {
  auto out = Napi::Array::New(env, tensors.size());
  for (size_t i = 0; i < tensors.size(); i++) out.Set(i, wrap(env, tensors[i]));
  return out;
}

static int64_t slotOf(const Napi::Value& value, const std::string& what) {
  if (!value.IsNumber()) throw ArgError(what + " is not a tensor");
  return value.As<Napi::Number>().Int64Value();
}

at::Tensor& tensorOf(const Napi::Value& value, const char* what) {
  int64_t slot = slotOf(value, what);
  if (slot < 0 || slot >= static_cast<int64_t>(g_slots.size()) || !g_slots[slot].defined()) {
    throw ArgError(std::string(what) + " was disposed; a tensor cannot be used after dispose()");
  }
  return g_slots[slot];
}

static std::string argName(size_t i) { return "argument " + std::to_string(i); }

bool isNullish(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined();
}

at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) throw ArgError("missing tensor " + argName(i));
  return tensorOf(info[i], ("tensor " + argName(i)).c_str());
}

std::optional<at::Tensor> optTensorArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info, i)) return std::nullopt;
  return tensorArg(info, i);
}

std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError(argName(i) + " must be an array of tensors");
  auto array = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(array.Length());
  for (uint32_t k = 0; k < array.Length(); k++) {
    out.push_back(tensorOf(array.Get(k), ("tensor " + std::to_string(k) + " of " + argName(i)).c_str()));
  }
  return out;
}

static int64_t toInt(const Napi::Value& v, const std::string& what) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) throw ArgError(what + " must be an integer, got " + std::to_string(d));
    return static_cast<int64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  throw ArgError(what + " must be an integer");
}

std::vector<int64_t> intListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) throw ArgError("missing " + argName(i));
  if (info[i].IsNumber()) return {toInt(info[i], argName(i))};
  if (!info[i].IsArray()) throw ArgError(argName(i) + " must be an array of integers");
  auto array = info[i].As<Napi::Array>();
  std::vector<int64_t> out(array.Length());
  for (uint32_t k = 0; k < array.Length(); k++) out[k] = toInt(array.Get(k), argName(i) + "[" + std::to_string(k) + "]");
  return out;
}

std::optional<std::vector<int64_t>> optIntListArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info, i)) return std::nullopt;
  return intListArg(info, i);
}

std::vector<double> doubleListArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsArray()) throw ArgError(argName(i) + " must be an array of numbers");
  auto array = info[i].As<Napi::Array>();
  std::vector<double> out(array.Length());
  for (uint32_t k = 0; k < array.Length(); k++) {
    auto v = array.Get(k);
    if (!v.IsNumber()) throw ArgError(argName(i) + "[" + std::to_string(k) + "] must be a number");
    out[k] = v.As<Napi::Number>().DoubleValue();
  }
  return out;
}

int64_t intArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) throw ArgError("missing " + argName(i));
  return toInt(info[i], argName(i));
}

std::optional<int64_t> optIntArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info, i)) return std::nullopt;
  return intArg(info, i);
}

double doubleArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsNumber()) throw ArgError(argName(i) + " must be a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

std::optional<double> optDoubleArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info, i)) return std::nullopt;
  return doubleArg(info, i);
}

bool boolArg(const Napi::CallbackInfo& info, size_t i, bool fallback) {
  if (isNullish(info, i)) return fallback;
  return info[i].ToBoolean().Value();
}

std::string stringArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) throw ArgError(argName(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

at::Scalar scalarArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length()) throw ArgError("missing " + argName(i));
  if (info[i].IsBoolean()) return at::Scalar(info[i].As<Napi::Boolean>().Value());
  if (info[i].IsNumber()) {
    double d = info[i].As<Napi::Number>().DoubleValue();
    // Integral JS numbers are integer scalars so that int tensors keep their dtype (as in PyTorch).
    if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.007199254740992e15) return at::Scalar(static_cast<int64_t>(d));
    return at::Scalar(d);
  }
  throw ArgError(argName(i) + " must be a number or a boolean");
}

static const std::unordered_map<std::string, at::ScalarType>& dtypeTable() {
  static const std::unordered_map<std::string, at::ScalarType> table = {
      {"float32", at::kFloat}, {"float16", at::kHalf},  {"bfloat16", at::kBFloat16}, {"float64", at::kDouble},
      {"int64", at::kLong},    {"int32", at::kInt},     {"int16", at::kShort},       {"int8", at::kChar},
      {"uint8", at::kByte},    {"bool", at::kBool},
  };
  return table;
}

at::ScalarType parseDtype(const std::string& name) {
  auto& table = dtypeTable();
  auto it = table.find(name);
  if (it == table.end()) throw ArgError("unknown dtype '" + name + "'");
  return it->second;
}

std::string dtypeName(at::ScalarType type) {
  for (auto& [name, t] : dtypeTable()) {
    if (t == type) return name;
  }
  return std::string(c10::toString(type));
}

at::ScalarType dtypeArg(const Napi::CallbackInfo& info, size_t i) { return parseDtype(stringArg(info, i)); }

std::optional<at::ScalarType> optDtypeArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info, i)) return std::nullopt;
  return dtypeArg(info, i);
}

at::Device deviceArg(const Napi::CallbackInfo& info, size_t i) {
  if (isNullish(info, i)) return at::Device(at::kCPU);
  std::string name = stringArg(info, i);
  at::Device device(name);  // throws c10::Error for a malformed name
  if (device.is_cuda()) {
    if (!at::hasCUDA()) throw ArgError("device '" + name + "' requested, but CUDA is not available in this build/machine");
    int64_t index = device.has_index() ? device.index() : 0;
    if (index >= static_cast<int64_t>(at::detail::getCUDAHooks().getNumGPUs())) {
      throw ArgError("device '" + name + "' does not exist: this machine has " +
                     std::to_string(at::detail::getCUDAHooks().getNumGPUs()) + " CUDA device(s)");
    }
  }
  return device;
}

at::TensorOptions options(at::ScalarType dtype, at::Device device) { return at::TensorOptions().dtype(dtype).device(device); }

struct OpEntry {
  const char* name;
  OpFn fn;
};

static Napi::Value guarded(const Napi::CallbackInfo& info) {
  auto* entry = static_cast<OpEntry*>(info.Data());
  try {
    return entry->fn(info);
  } catch (const Napi::Error& e) {
    // Errors raised by N-API itself (a JS value of the wrong type) name the op too.
    throw Napi::Error::New(info.Env(), std::string(entry->name) + ": " + e.Message());
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), std::string(entry->name) + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(entry->name) + ": " + e.what());
  } catch (...) {
    throw Napi::Error::New(info.Env(), std::string(entry->name) + ": unknown native error");
  }
}

void def(Napi::Env env, Napi::Object exports, const char* name, OpFn fn) {
  auto* entry = new OpEntry{name, fn};  // lives as long as the addon
  exports.Set(name, Napi::Function::New(env, guarded, name, entry));
}

}  // namespace vlmkit

using namespace vlmkit;

// ---- creation ----
OP(empty) { ENV; return wrap(env, at::empty(intListArg(info, 0), options(dtypeArg(info, 1), deviceArg(info, 2)))); }
OP(zeros) { ENV; return wrap(env, at::zeros(intListArg(info, 0), options(dtypeArg(info, 1), deviceArg(info, 2)))); }
OP(ones) { ENV; return wrap(env, at::ones(intListArg(info, 0), options(dtypeArg(info, 1), deviceArg(info, 2)))); }
OP(full) { ENV; return wrap(env, at::full(intListArg(info, 0), scalarArg(info, 1), options(dtypeArg(info, 2), deviceArg(info, 3)))); }
OP(arange) {
  ENV;
  return wrap(env, at::arange(scalarArg(info, 0), scalarArg(info, 1), scalarArg(info, 2), options(dtypeArg(info, 3), deviceArg(info, 4))));
}
OP(linspace) {
  ENV;
  return wrap(env, at::linspace(scalarArg(info, 0), scalarArg(info, 1), intArg(info, 2), options(dtypeArg(info, 3), deviceArg(info, 4))));
}
OP(rand) { ENV; return wrap(env, at::rand(intListArg(info, 0), options(dtypeArg(info, 1), deviceArg(info, 2)))); }
OP(randn) { ENV; return wrap(env, at::randn(intListArg(info, 0), options(dtypeArg(info, 1), deviceArg(info, 2)))); }
OP(randint) {
  ENV;
  return wrap(env, at::randint(intArg(info, 0), intArg(info, 1), intListArg(info, 2), options(dtypeArg(info, 3), deviceArg(info, 4))));
}
OP(eye) { ENV; return wrap(env, at::eye(intArg(info, 0), options(dtypeArg(info, 1), deviceArg(info, 2)))); }
OP(randperm) { ENV; return wrap(env, at::randperm(intArg(info, 0), options(at::kLong, deviceArg(info, 1)))); }

// fromBuffer(typedArrayOrBuffer, shape, dtype): copies host bytes into a new CPU tensor.
OP(fromBuffer) {
  ENV;
  if (!info[0].IsTypedArray() && !info[0].IsArrayBuffer() && !info[0].IsBuffer()) throw ArgError("argument 0 must be a TypedArray, ArrayBuffer or Buffer");
  const uint8_t* data;
  size_t byteLength;
  if (info[0].IsArrayBuffer()) {
    auto ab = info[0].As<Napi::ArrayBuffer>();
    data = static_cast<const uint8_t*>(ab.Data());
    byteLength = ab.ByteLength();
  } else {
    auto ta = info[0].As<Napi::TypedArray>();
    data = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    byteLength = ta.ByteLength();
  }
  auto shape = intListArg(info, 1);
  auto dtype = dtypeArg(info, 2);
  auto out = at::empty(shape, options(dtype, at::kCPU));
  size_t expected = out.numel() * out.element_size();
  if (expected != byteLength) {
    throw ArgError("data has " + std::to_string(byteLength) + " bytes but shape " + c10::str(out.sizes()) + " of " + dtypeName(dtype) +
                   " needs " + std::to_string(expected));
  }
  if (byteLength) std::memcpy(out.data_ptr(), data, byteLength);
  return wrap(env, out);
}

// toBuffer(t): the tensor's elements, contiguous, on the host, as a new ArrayBuffer.
OP(toBuffer) {
  ENV;
  auto t = tensorArg(info, 0).detach().to(at::kCPU).contiguous();
  auto ab = Napi::ArrayBuffer::New(env, t.numel() * t.element_size());
  if (ab.ByteLength()) std::memcpy(ab.Data(), t.data_ptr(), ab.ByteLength());
  return ab;
}

OP(item) {
  ENV;
  auto& t = tensorArg(info, 0);
  if (t.numel() != 1) throw ArgError("item() needs a tensor with one element, got shape " + c10::str(t.sizes()));
  auto s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
  return Napi::Number::New(env, s.toDouble());
}

// ---- properties ----
OP(shape) {
  ENV;
  auto sizes = tensorArg(info, 0).sizes();
  auto out = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(sizes[i])));
  return out;
}
OP(strides) {
  ENV;
  auto strides = tensorArg(info, 0).strides();
  auto out = Napi::Array::New(env, strides.size());
  for (size_t i = 0; i < strides.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(strides[i])));
  return out;
}
OP(dtype) { ENV; return Napi::String::New(env, dtypeName(tensorArg(info, 0).scalar_type())); }
OP(device) { ENV; return Napi::String::New(env, tensorArg(info, 0).device().str()); }
OP(numel) { ENV; return Napi::Number::New(env, static_cast<double>(tensorArg(info, 0).numel())); }
OP(isContiguous) { ENV; return Napi::Boolean::New(env, tensorArg(info, 0).is_contiguous()); }
OP(requiresGrad) { ENV; return Napi::Boolean::New(env, tensorArg(info, 0).requires_grad()); }
OP(setRequiresGrad) {
  ENV;
  tensorArg(info, 0).requires_grad_(boolArg(info, 1));
  return env.Undefined();
}
OP(isLeaf) { ENV; return Napi::Boolean::New(env, tensorArg(info, 0).is_leaf()); }
OP(grad) { ENV; return wrap(env, tensorArg(info, 0).grad()); }
OP(setGrad) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto g = optTensorArg(info, 1);
  // The checks of torch's .grad setter: a mismatched gradient would break (or silently retype) the next backward.
  if (g && (g->sizes() != t.sizes() || g->scalar_type() != t.scalar_type() || g->device() != t.device())) {
    throw ArgError("assigned grad " + c10::str(g->sizes()) + " " + dtypeName(g->scalar_type()) + " on " + g->device().str() +
                   " must match the tensor's shape, dtype and device: " + c10::str(t.sizes()) + " " + dtypeName(t.scalar_type()) + " on " +
                   t.device().str());
  }
  t.mutable_grad() = g ? *g : at::Tensor();
  return env.Undefined();
}
OP(dataPtr) { ENV; return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(tensorArg(info, 0).data_ptr()))); }

// dispose(slot): releases the tensor now; a released or unknown slot is ignored (dispose is idempotent).
OP(dispose) {
  ENV;
  int64_t slot = slotOf(info[0], "argument 0");
  if (slot >= 0 && slot < static_cast<int64_t>(g_slots.size()) && g_slots[slot].defined()) {
    g_slots[slot] = at::Tensor();
    g_freeSlots.push_back(static_cast<int32_t>(slot));
    g_liveTensors--;
  }
  return env.Undefined();
}
OP(isDisposed) {
  ENV;
  int64_t slot = slotOf(info[0], "argument 0");
  return Napi::Boolean::New(env, slot < 0 || slot >= static_cast<int64_t>(g_slots.size()) || !g_slots[slot].defined());
}
OP(liveTensors) { ENV; return Napi::Number::New(env, static_cast<double>(g_liveTensors.load())); }

// to(t, dtype|null, device|null, nonBlocking, copy)
OP(to) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto dtype = optDtypeArg(info, 1).value_or(t.scalar_type());
  at::Device device = isNullish(info, 2) ? t.device() : deviceArg(info, 2);
  return wrap(env, t.to(device, dtype, boolArg(info, 3), boolArg(info, 4)));
}
OP(clone) { ENV; return wrap(env, tensorArg(info, 0).clone()); }
OP(contiguous) { ENV; return wrap(env, tensorArg(info, 0).contiguous()); }
OP(detach) { ENV; return wrap(env, tensorArg(info, 0).detach()); }
OP(alias) { ENV; return wrap(env, tensorArg(info, 0)); }
OP(pinMemory) { ENV; return wrap(env, tensorArg(info, 0).pin_memory()); }

OP(versionInfo) {
  ENV;
  auto out = Napi::Object::New(env);
  out.Set("torch", Napi::String::New(env, TORCH_VERSION));
#ifdef VLMKIT_CUDA
  out.Set("cudaBuild", Napi::Boolean::New(env, true));
#else
  out.Set("cudaBuild", Napi::Boolean::New(env, false));
#endif
  out.Set("flashAttention", Napi::Boolean::New(env, VLMKIT_TORCH_AT_LEAST(2, 0)));
  return out;
}
OP(setNumThreads) {
  ENV;
  at::set_num_threads(static_cast<int>(intArg(info, 0)));
  return env.Undefined();
}
OP(getNumThreads) { ENV; return Napi::Number::New(env, at::get_num_threads()); }

namespace vlmkit {
void initTensor(Napi::Env env, Napi::Object exports) {
  DEF(empty); DEF(zeros); DEF(ones); DEF(full); DEF(arange); DEF(linspace); DEF(rand); DEF(randn); DEF(randint);
  DEF(eye); DEF(randperm); DEF(fromBuffer); DEF(toBuffer); DEF(item);
  DEF(shape); DEF(strides); DEF(dtype); DEF(device); DEF(numel); DEF(isContiguous); DEF(requiresGrad); DEF(setRequiresGrad);
  DEF(isLeaf); DEF(grad); DEF(setGrad); DEF(dataPtr); DEF(dispose); DEF(isDisposed); DEF(liveTensors);
  DEF(to); DEF(clone); DEF(contiguous); DEF(detach); DEF(alias); DEF(pinMemory);
  DEF(versionInfo); DEF(setNumThreads); DEF(getNumThreads);
}
}  // namespace vlmkit
