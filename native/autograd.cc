// Autograd, grad mode, autocast and random-number state.
#include "common.h"

#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include <cstring>

using namespace vlmkit;

// backward(t, grad|null, retainGraph, createGraph)
OP(backward) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto grad = optTensorArg(info, 1);
  if (!grad && t.numel() != 1) throw ArgError("backward() without a gradient needs a scalar (one-element) tensor, got shape " + c10::str(t.sizes()));
  t.backward(grad ? *grad : at::Tensor(), c10::optional<bool>(boolArg(info, 2)), boolArg(info, 3));
  return env.Undefined();
}
// grad(outputs[], inputs[], gradOutputs[]|null, retainGraph, createGraph, allowUnused) -> (Tensor|null)[]
OP(autogradGrad) {
  ENV;
  auto outputs = tensorListArg(info, 0);
  auto inputs = tensorListArg(info, 1);
  std::vector<at::Tensor> gradOutputs;
  if (!isNullish(info, 2)) gradOutputs = tensorListArg(info, 2);
  auto grads = torch::autograd::grad(outputs, inputs, gradOutputs, c10::optional<bool>(boolArg(info, 3)), boolArg(info, 4), boolArg(info, 5));
  return wrapList(env, grads);
}
OP(setGradEnabled) {
  ENV;
  bool previous = at::GradMode::is_enabled();
  at::GradMode::set_enabled(boolArg(info, 0));
  return Napi::Boolean::New(env, previous);
}
OP(isGradEnabled) { ENV; return Napi::Boolean::New(env, at::GradMode::is_enabled()); }

// ---- autocast ----
// The C++ API changed in libtorch 2.4 (per-device-type functions); both spellings are covered here.
static at::DeviceType autocastDevice(const std::string& name) {
  if (name == "cuda") return at::kCUDA;
  if (name == "cpu") return at::kCPU;
  throw ArgError("autocast device must be 'cuda' or 'cpu', got '" + name + "'");
}
static bool autocastEnabled(at::DeviceType device) {
#if VLMKIT_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == at::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
#endif
}
static at::ScalarType autocastDtype(at::DeviceType device) {
#if VLMKIT_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == at::kCUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
#endif
}
static void setAutocast(at::DeviceType device, bool enabled, at::ScalarType dtype) {
#if VLMKIT_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == at::kCUDA) {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}
// autocastEnter(device, dtype) -> [wasEnabled, previousDtype]
OP(autocastEnter) {
  ENV;
  auto device = autocastDevice(stringArg(info, 0));
  auto dtype = dtypeArg(info, 1);
  bool wasEnabled = autocastEnabled(device);
  auto previous = autocastDtype(device);
  setAutocast(device, true, dtype);
  at::autocast::increment_nesting();
  auto out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Boolean::New(env, wasEnabled));
  out.Set(1u, Napi::String::New(env, dtypeName(previous)));
  return out;
}
// autocastExit(device, wasEnabled, previousDtype)
OP(autocastExit) {
  ENV;
  auto device = autocastDevice(stringArg(info, 0));
  setAutocast(device, boolArg(info, 1), dtypeArg(info, 2));
  // The cast cache holds bf16 copies of fp32 weights for the region; drop it when the outermost region ends.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  return env.Undefined();
}
OP(isAutocastEnabled) { ENV; return Napi::Boolean::New(env, autocastEnabled(autocastDevice(stringArg(info, 0)))); }

// ---- random numbers ----
OP(manualSeed) {
  ENV;
  at::manual_seed(static_cast<uint64_t>(intArg(info, 0)));
  return env.Undefined();
}
static at::Generator generatorFor(const at::Device& device) {
  if (device.is_cpu()) return at::detail::getDefaultCPUGenerator();
  return at::globalContext().defaultGenerator(device);
}
// rngState(device) -> Buffer holding the generator state (for exact resume)
OP(getRngState) {
  ENV;
  auto gen = generatorFor(deviceArg(info, 0));
  at::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = at::Tensor(gen.get_state());
  }
  auto bytes = state.contiguous();
  auto buffer = Napi::Buffer<uint8_t>::Copy(env, bytes.data_ptr<uint8_t>(), bytes.numel());
  return buffer;
}
OP(setRngState) {
  ENV;
  auto gen = generatorFor(deviceArg(info, 0));
  if (!info[1].IsBuffer()) throw ArgError("argument 1 must be a Buffer from getRngState");
  auto buffer = info[1].As<Napi::Buffer<uint8_t>>();
  auto state = at::empty({static_cast<int64_t>(buffer.Length())}, at::TensorOptions().dtype(at::kByte));
  std::memcpy(state.data_ptr<uint8_t>(), buffer.Data(), buffer.Length());
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
  return env.Undefined();
}

namespace vlmkit {
void initAutograd(Napi::Env env, Napi::Object exports) {
  DEF(backward); DEF(autogradGrad); DEF(setGradEnabled); DEF(isGradEnabled);
  DEF(autocastEnter); DEF(autocastExit); DEF(isAutocastEnabled);
  DEF(manualSeed); DEF(getRngState); DEF(setRngState);
}
}  // namespace vlmkit
