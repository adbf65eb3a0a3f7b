#include "common/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

namespace moss {
namespace {

Status errno_status(std::string_view what, const std::filesystem::path& path) {
  int e = errno;
  ErrorCode code = (e == ENOENT) ? ErrorCode::kNotFound
                   : (e == EACCES || e == EPERM) ? ErrorCode::kPermissionDenied
                                                 : ErrorCode::kInternal;
  return Status(code, fmt::format("{} {}: {}", what, path.string(), std::strerror(e)));
}

// Reads into any byte container with resize()/data().
template <typename Buffer>
Status read_into(const std::filesystem::path& path, size_t max_bytes, Buffer& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno_status("cannot open", path);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Status s = errno_status("cannot stat", path);
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return invalid_argument("{} is not a regular file", path.string());
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return resource_exhausted("{} is {} bytes, more than the limit of {}", path.string(),
                              st.st_size, max_bytes);
  }
  out.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = errno_status("cannot read", path);
      ::close(fd);
      return s;
    }
    if (n == 0) break;  // the file shrank while we read it
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (done != out.size()) return data_loss("{} changed size while being read", path.string());
  return Status::Ok();
}

}  // namespace

Result<std::vector<uint8_t>> read_file(const std::filesystem::path& path, size_t max_bytes) {
  std::vector<uint8_t> out;
  MOSS_RETURN_IF_ERROR(read_into(path, max_bytes, out));
  return out;
}

Result<std::string> read_text_file(const std::filesystem::path& path, size_t max_bytes) {
  std::string out;
  MOSS_RETURN_IF_ERROR(read_into(path, max_bytes, out));
  return out;
}

Result<SecretBytes> read_secret_file(const std::filesystem::path& path, size_t max_bytes) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno_status("cannot stat", path);
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return resource_exhausted("{} is larger than {} bytes", path.string(), max_bytes);
  }
  // Sized up front so the buffer never reallocates and leaves an unwiped copy behind.
  SecretBytes out(static_cast<size_t>(st.st_size));
  struct Span {
    SecretBytes& s;
    size_t size() const { return s.size(); }
    void resize(size_t n) {
      if (n != s.size()) s = SecretBytes(n);
    }
    uint8_t* data() { return s.data(); }
  } view{out};
  MOSS_RETURN_IF_ERROR(read_into(path, max_bytes, view));
  return out;
}

Status write_file(const std::filesystem::path& path, std::span<const uint8_t> bytes,
                  unsigned mode) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::random_device rd;
  std::filesystem::path tmp =
      dir / fmt::format(".{}.tmp{:08x}", path.filename().string(), rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return errno_status("cannot create", tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = errno_status("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    Status s = errno_status("cannot sync", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = errno_status("cannot rename into", path);
    ::unlink(tmp.c_str());
    return s;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Status write_text_file(const std::filesystem::path& path, std::string_view text, unsigned mode) {
  return write_file(path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}, mode);
}

std::string file_tail_lines(const std::filesystem::path& path, size_t max_lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  constexpr std::streamoff kWindow = 64 * 1024;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  in.seekg(size > kWindow ? size - kWindow : 0);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t pos = text.size();
  for (size_t lines = 0; lines < max_lines && pos != std::string::npos && pos > 0; ++lines) {
    pos = text.rfind('\n', pos - 1);
  }
  return pos == std::string::npos ? text : text.substr(pos + 1);
}

}  // namespace moss
