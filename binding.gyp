{
  "targets": [
    {
      "target_name": "vlmkit_native",
      "sources": [
        "native/addon.cc",
        "native/tensor.cc",
        "native/ops_shape.cc",
        "native/ops_math.cc",
        "native/ops_nn.cc",
        "native/autograd.cc",
        "native/device.cc",
        "native/optim.cc",
        "native/io.cc"
      ],
      "include_dirs": [
        "<!(node -p \"process.env.NODE_ADDON_API_DIR || require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.mjs --include)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "<!@(node scripts/find-libtorch.mjs --defines)"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": [
        "-L<!(node scripts/find-libtorch.mjs --libdir)",
        "-Wl,-rpath,<!(node scripts/find-libtorch.mjs --libdir)",
        "-Wl,--no-as-needed",
        "<!@(node scripts/find-libtorch.mjs --libs)",
        "-Wl,--as-needed"
      ]
    }
  ]
}
