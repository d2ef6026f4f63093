// CUDA device queries and the caching allocator's statistics. Built without CUDA, the queries report
// no devices and the memory functions throw a clear error.
#include "common.h"

#ifdef VLMKIT_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

using namespace vlmkit;

OP(cudaIsAvailable) { ENV; return Napi::Boolean::New(env, at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0); }
OP(cudaDeviceCount) { ENV; return Napi::Number::New(env, at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0); }

#ifdef VLMKIT_CUDA
static c10::DeviceIndex cudaIndex(const Napi::CallbackInfo& info, size_t i) {
  if (!at::hasCUDA()) throw ArgError("CUDA is not available on this machine");
  int64_t index = optIntArg(info, i).value_or(c10::cuda::current_device());
  if (index < 0 || index >= at::detail::getCUDAHooks().getNumGPUs()) {
    throw ArgError("CUDA device " + std::to_string(index) + " does not exist (" + std::to_string(at::detail::getCUDAHooks().getNumGPUs()) + " present)");
  }
  return static_cast<c10::DeviceIndex>(index);
}
OP(cudaDeviceName) { ENV; return Napi::String::New(env, at::cuda::getDeviceProperties(cudaIndex(info, 0))->name); }
OP(cudaTotalMemory) { ENV; return Napi::Number::New(env, static_cast<double>(at::cuda::getDeviceProperties(cudaIndex(info, 0))->totalGlobalMem)); }
OP(cudaSynchronize) {
  ENV;
  if (isNullish(info, 0)) {
    c10::cuda::device_synchronize();
  } else {
    c10::cuda::CUDAGuard guard(cudaIndex(info, 0));
    c10::cuda::device_synchronize();
  }
  return env.Undefined();
}
// cudaMemoryStats(device) -> { allocated, reserved, peakAllocated, peakReserved } in bytes
OP(cudaMemoryStats) {
  ENV;
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(cudaIndex(info, 0));
  auto out = Napi::Object::New(env);
  // index 0 is StatType::AGGREGATE in every libtorch version
  out.Set("allocated", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[0].current)));
  out.Set("peakAllocated", Napi::Number::New(env, static_cast<double>(stats.allocated_bytes[0].peak)));
  out.Set("reserved", Napi::Number::New(env, static_cast<double>(stats.reserved_bytes[0].current)));
  out.Set("peakReserved", Napi::Number::New(env, static_cast<double>(stats.reserved_bytes[0].peak)));
  return out;
}
OP(cudaResetPeakMemoryStats) {
  ENV;
  c10::cuda::CUDACachingAllocator::resetPeakStats(cudaIndex(info, 0));
  return env.Undefined();
}
OP(cudaEmptyCache) {
  ENV;
  c10::cuda::CUDACachingAllocator::emptyCache();
  return env.Undefined();
}
#else
static Napi::Value noCuda(const Napi::CallbackInfo& info) {
  throw ArgError("this vlmkit build has no CUDA support (libtorch was CPU-only when it was built)");
}
OP(cudaDeviceName) { return noCuda(info); }
OP(cudaTotalMemory) { return noCuda(info); }
OP(cudaSynchronize) { return noCuda(info); }
OP(cudaMemoryStats) { return noCuda(info); }
OP(cudaResetPeakMemoryStats) { return noCuda(info); }
OP(cudaEmptyCache) { return noCuda(info); }
#endif

namespace vlmkit {
void initDevice(Napi::Env env, Napi::Object exports) {
  DEF(cudaIsAvailable); DEF(cudaDeviceCount); DEF(cudaDeviceName); DEF(cudaTotalMemory); DEF(cudaSynchronize); DEF(cudaMemoryStats);
  DEF(cudaResetPeakMemoryStats); DEF(cudaEmptyCache);
}
}  // namespace vlmkit
