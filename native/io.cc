// File I/O straight into and out of tensor storage, so loading a checkpoint never holds a second copy.
#include "common.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

#include <ATen/Parallel.h>

#ifdef VLMKIT_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#endif

using namespace vlmkit;

namespace {

std::string errnoText(const std::string& what, const std::string& path) { return what + " " + path + ": " + std::strerror(errno); }

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

// Reads exactly length bytes at offset into dst; a short file is an error naming the path and the offsets.
static void preadAll(int fd, char* dst, size_t length, int64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(fd, dst + done, length - done, offset + static_cast<int64_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ArgError(errnoText("cannot read", path));
    if (n == 0) {
      throw ArgError(path + " is truncated: expected " + std::to_string(length) + " bytes at offset " + std::to_string(offset) + ", file ended after " +
                     std::to_string(done));
    }
    done += static_cast<size_t>(n);
  }
}

// preadAll on the intra-op thread pool in 4 MiB pieces: one thread copies from the page cache at only a few GB/s.
static void parallelPread(int fd, char* dst, size_t length, int64_t offset, const std::string& path) {
  constexpr int64_t kPiece = int64_t{4} << 20;
  at::parallel_for(0, static_cast<int64_t>(length), kPiece, [&](int64_t begin, int64_t end) {
    preadAll(fd, dst + begin, static_cast<size_t>(end - begin), offset + begin, path);
  });
}

#ifdef VLMKIT_CUDA
// A CUDA tensor is filled through two pinned staging buffers: the disk read of one chunk overlaps the
// host-to-device copy of the previous one (a copy from pageable memory would be synchronous and several
// times slower), and host memory stays at two chunks whatever the tensor's size.
static void readFileIntoCuda(const at::Tensor& t, int fd, const std::string& path, int64_t offset, size_t length) {
  constexpr size_t kChunk = size_t{32} << 20;
  c10::cuda::CUDAGuard guard(t.device());
  auto bytes = t.reshape({-1}).view(at::kByte);
  size_t chunk = std::min(kChunk, length);
  auto pinned = at::TensorOptions().dtype(at::kByte).pinned_memory(true);
  at::Tensor staging[2] = {at::empty({static_cast<int64_t>(chunk)}, pinned), length > chunk ? at::empty({static_cast<int64_t>(chunk)}, pinned) : at::Tensor()};
  at::cuda::CUDAEvent copied[2];
  size_t done = 0;
  for (int k = 0; done < length; k ^= 1) {
    size_t n = std::min(chunk, length - done);
    copied[k].synchronize();  // this buffer's previous copy has finished
    parallelPread(fd, static_cast<char*>(staging[k].data_ptr()), n, offset + static_cast<int64_t>(done), path);
    bytes.narrow(0, static_cast<int64_t>(done), static_cast<int64_t>(n)).copy_(staging[k].narrow(0, 0, static_cast<int64_t>(n)), /*non_blocking=*/true);
    copied[k].record();
    done += n;
  }
  copied[0].synchronize();
  copied[1].synchronize();
}
#endif

// readFileInto(t, path, offset): fills a contiguous CPU or CUDA tensor with t.nbytes() bytes read from path at offset.
OP(readFileInto) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto path = stringArg(info, 1);
  int64_t offset = intArg(info, 2);
  if (!t.is_contiguous() || !(t.is_cpu() || t.is_cuda())) throw ArgError("readFileInto needs a contiguous CPU or CUDA tensor");
  size_t length = t.numel() * t.element_size();
  Fd file{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) throw ArgError(errnoText("cannot open", path));
  if (t.is_cuda()) {
#ifdef VLMKIT_CUDA
    readFileIntoCuda(t, file.fd, path, offset, length);
#else
    throw ArgError("readFileInto: this build has no CUDA");
#endif
  } else {
    parallelPread(file.fd, static_cast<char*>(t.data_ptr()), length, offset, path);
  }
  return env.Undefined();
}

// writeToFd(fd, t): appends the tensor's bytes (contiguous, on the host) to an open file descriptor.
OP(writeToFd) {
  ENV;
  int fd = static_cast<int>(intArg(info, 0));
  auto t = tensorArg(info, 1).detach().to(at::kCPU).contiguous();
  const auto* src = static_cast<const char*>(t.data_ptr());
  size_t length = t.numel() * t.element_size(), done = 0;
  while (done < length) {
    ssize_t n = write(fd, src + done, length - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ArgError(std::string("cannot write tensor data: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return env.Undefined();
}

namespace vlmkit {
void initIo(Napi::Env env, Napi::Object exports) {
  DEF(readFileInto); DEF(writeToFd);
}
}  // namespace vlmkit
