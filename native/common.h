// Shared plumbing for every op wrapper: tensor handles, argument conversion, and the one place where
// libtorch exceptions become JS errors. Model logic never lives in the native layer.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>
#include <torch/version.h>

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#define VLMKIT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace vlmkit {

// A JS tensor holds a slot number in the table of live tensors (a small integer: no allocation, no
// GC finalizer per op). dispose() releases the slot at once; the JS layer frees slots of tensors that were
// never disposed through a FinalizationRegistry, only a backstop. Slot -1 means "disposed".
// Number of live slots (tensors not yet disposed or collected).
extern std::atomic<int64_t> g_liveTensors;

// Thrown for argument errors found by the wrappers themselves (not by libtorch).
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Napi::Value wrap(Napi::Env env, at::Tensor tensor);
Napi::Value wrapList(Napi::Env env, const std::vector<at::Tensor>& tensors);
at::Tensor& tensorOf(const Napi::Value& value, const char* what);

// Argument readers: index i of the call, with a name for error messages.
at::Tensor& tensorArg(const Napi::CallbackInfo& info, size_t i);
std::optional<at::Tensor> optTensorArg(const Napi::CallbackInfo& info, size_t i);
std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i);
std::vector<int64_t> intListArg(const Napi::CallbackInfo& info, size_t i);
std::optional<std::vector<int64_t>> optIntListArg(const Napi::CallbackInfo& info, size_t i);
std::vector<double> doubleListArg(const Napi::CallbackInfo& info, size_t i);
int64_t intArg(const Napi::CallbackInfo& info, size_t i);
std::optional<int64_t> optIntArg(const Napi::CallbackInfo& info, size_t i);
double doubleArg(const Napi::CallbackInfo& info, size_t i);
std::optional<double> optDoubleArg(const Napi::CallbackInfo& info, size_t i);
bool boolArg(const Napi::CallbackInfo& info, size_t i, bool fallback = false);
std::string stringArg(const Napi::CallbackInfo& info, size_t i);
at::Scalar scalarArg(const Napi::CallbackInfo& info, size_t i);
at::ScalarType dtypeArg(const Napi::CallbackInfo& info, size_t i);
std::optional<at::ScalarType> optDtypeArg(const Napi::CallbackInfo& info, size_t i);
at::Device deviceArg(const Napi::CallbackInfo& info, size_t i);
bool isNullish(const Napi::CallbackInfo& info, size_t i);

at::ScalarType parseDtype(const std::string& name);
std::string dtypeName(at::ScalarType type);
at::TensorOptions options(at::ScalarType dtype, at::Device device);

// std::optional -> c10::optional (distinct types in libtorch 1.13, the same type in 2.x).
template <class T>
c10::optional<T> c10opt(const std::optional<T>& value) {
  return value ? c10::optional<T>(*value) : c10::optional<T>(c10::nullopt);
}

// Registration: every exported function goes through `guarded`, which names the op in the error.
using OpFn = Napi::Value (*)(const Napi::CallbackInfo&);
void def(Napi::Env env, Napi::Object exports, const char* name, OpFn fn);

void initTensor(Napi::Env env, Napi::Object exports);
void initShapeOps(Napi::Env env, Napi::Object exports);
void initMathOps(Napi::Env env, Napi::Object exports);
void initNnOps(Napi::Env env, Napi::Object exports);
void initAutograd(Napi::Env env, Napi::Object exports);
void initDevice(Napi::Env env, Napi::Object exports);
void initOptim(Napi::Env env, Napi::Object exports);
void initIo(Napi::Env env, Napi::Object exports);

}  // namespace vlmkit

// Declares an op wrapper body: `OP(add) { return wrap(env, at::add(tensorArg(info, 0), ...)); }`
#define OP(name) static Napi::Value op_##name([[maybe_unused]] const Napi::CallbackInfo& info)
#define ENV Napi::Env env = info.Env()
#define DEF(name) ::vlmkit::def(env, exports, #name, op_##name)
