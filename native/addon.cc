// The vlmkit native addon: thin N-API wrappers over libtorch (ATen). See DESIGN.md.
#include "common.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vlmkit::initTensor(env, exports);
  vlmkit::initShapeOps(env, exports);
  vlmkit::initMathOps(env, exports);
  vlmkit::initNnOps(env, exports);
  vlmkit::initAutograd(env, exports);
  vlmkit::initDevice(env, exports);
  vlmkit::initOptim(env, exports);
  vlmkit::initIo(env, exports);
  return exports;
}

NODE_API_MODULE(vlmkit_native, Init)
