#include "client/model_crypt.h"

#include "crypto/model_key_file.h"
#include "crypto/random.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace moss::client {
namespace {

// A temporary output next to its target, removed unless committed.
class TempOutput {
 public:
  static Result<TempOutput> create(const std::filesystem::path& target) {
    std::filesystem::path dir = target.parent_path().empty() ? "." : target.parent_path();
    // fmt rather than string operator+: GCC 12 raises a false -Wrestrict on the latter.
    std::string tmpl = (dir / fmt::format(".{}.tmp-XXXXXX", target.filename().string())).string();
    int fd = mkstemp(tmpl.data());  // mode 0600: plaintext is never readable by others
    if (fd < 0) return internal_error("creating a temporary file in {}", dir.string());
    ::close(fd);
    return TempOutput(tmpl, target);
  }
  TempOutput(TempOutput&& o) noexcept : path_(std::move(o.path_)), target_(std::move(o.target_)) {
    o.path_.clear();
  }
  ~TempOutput() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }

  // fsync, rename over the target, fsync the directory: the output appears whole or not at all.
  Status commit() {
    int fd = ::open(path_.c_str(), O_RDONLY);
    if (fd < 0 || ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      return internal_error("syncing {}", path_);
    }
    ::close(fd);
    if (::rename(path_.c_str(), target_.c_str()) != 0) {
      return internal_error("renaming the output to {}", target_.string());
    }
    path_.clear();
    std::filesystem::path dir = target_.parent_path().empty() ? "." : target_.parent_path();
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
    return Status::Ok();
  }

 private:
  TempOutput(std::string path, std::filesystem::path target)
      : path_(std::move(path)), target_(std::move(target)) {}
  std::string path_;
  std::filesystem::path target_;
};

Result<uint64_t> input_size(const std::filesystem::path& in) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(in, ec)) {
    return not_found("input {} is not a readable file", in.string());
  }
  uint64_t size = std::filesystem::file_size(in, ec);
  if (ec) return internal_error("reading the size of {}: {}", in.string(), ec.message());
  return size;
}

}  // namespace

Status encrypt_model_file(const std::filesystem::path& in, const std::filesystem::path& out,
                          const std::string& model_id, const std::filesystem::path& key_out,
                          const ModelCryptOptions& options) {
  std::error_code ec;
  if (!options.force && std::filesystem::exists(key_out, ec)) {
    return already_exists("key file {} exists; refusing to replace a key (use --force)",
                          key_out.string());
  }
  MOSS_ASSIGN_OR_RETURN(uint64_t total, input_size(in));
  MOSS_ASSIGN_OR_RETURN(SecretBytes key, crypto::random_secret(crypto::kModelKeySize));
  std::ifstream src(in, std::ios::binary);
  if (!src) return not_found("cannot open {}", in.string());
  MOSS_ASSIGN_OR_RETURN(TempOutput tmp, TempOutput::create(out));
  {
    std::ofstream dst(tmp.path(), std::ios::binary | std::ios::trunc);
    if (!dst) return internal_error("cannot write {}", out.string());
    crypto::ModelEncryptOptions opts;
    opts.chunk_size = options.chunk_size;
    Status s = crypto::encrypt_model_stream(key.span(), model_id, src, dst, opts, total,
                                            options.progress);
    if (!s.ok()) return std::move(s).with_context(fmt::format("encrypting {}", in.string()));
  }
  // The key before the model: a model file whose key was never saved would be lost for good.
  MOSS_RETURN_IF_ERROR(crypto::write_model_key_file(key_out, model_id, key.span()));
  return tmp.commit();
}

Status decrypt_model_file(const std::filesystem::path& in, const std::filesystem::path& key_path,
                          const std::string& model_id, const std::filesystem::path& out,
                          const ModelCryptOptions& options) {
  MOSS_ASSIGN_OR_RETURN(crypto::ModelKey key, crypto::read_model_key_file(key_path));
  if (key.model_id != model_id) {
    return invalid_argument("key file {} is for model '{}', not '{}'", key_path.string(),
                            key.model_id, model_id);
  }
  MOSS_ASSIGN_OR_RETURN(uint64_t total, input_size(in));
  std::ifstream src(in, std::ios::binary);
  if (!src) return not_found("cannot open {}", in.string());
  MOSS_ASSIGN_OR_RETURN(TempOutput tmp, TempOutput::create(out));
  {
    std::ofstream dst(tmp.path(), std::ios::binary | std::ios::trunc);
    if (!dst) return internal_error("cannot write {}", out.string());
    Status s = crypto::decrypt_model_stream(key.key.span(), model_id, src, dst, total,
                                            options.progress);
    if (!s.ok()) return std::move(s).with_context(fmt::format("decrypting {}", in.string()));
  }
  return tmp.commit();
}

crypto::ProgressFn stderr_progress(std::string label) {
  return [label = std::move(label), last = -1](uint64_t done, uint64_t total) mutable {
    if (total == 0) return;
    int pct = static_cast<int>(done * 100 / total);
    if (pct == last) return;
    last = pct;
    std::fprintf(stderr, "\r%s: %3d%% (%llu/%llu MiB)", label.c_str(), pct,
                 static_cast<unsigned long long>(done >> 20),
                 static_cast<unsigned long long>(total >> 20));
    if (pct >= 100) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
}

}  // namespace moss::client
