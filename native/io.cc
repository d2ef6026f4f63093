// File I/O straight into and out of tensor storage, so loading a checkpoint never holds a second copy.
#include "common.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

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

// readFileInto(t, path, offset): fills a contiguous CPU tensor with t.nbytes() bytes read from path at offset.
OP(readFileInto) {
  ENV;
  auto& t = tensorArg(info, 0);
  auto path = stringArg(info, 1);
  int64_t offset = intArg(info, 2);
  if (!t.is_cpu() || !t.is_contiguous()) throw ArgError("readFileInto needs a contiguous CPU tensor");
  size_t length = t.numel() * t.element_size();
  Fd file{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) throw ArgError(errnoText("cannot open", path));
  auto* dst = static_cast<char*>(t.data_ptr());
  size_t done = 0;
  while (done < length) {
    ssize_t n = pread(file.fd, dst + done, length - done, offset + static_cast<int64_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw ArgError(errnoText("cannot read", path));
    if (n == 0) {
      throw ArgError(path + " is truncated: expected " + std::to_string(length) + " bytes at offset " + std::to_string(offset) + ", file ended after " +
                     std::to_string(done));
    }
    done += static_cast<size_t>(n);
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
