#include "store/sealing_key.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "crypto/hkdf.h"
#include "crypto/random.h"

#include <sys/stat.h>

namespace moss::store {
namespace fs = std::filesystem;

namespace {

class GramineSealingKey final : public SealingKeySource {
 public:
  explicit GramineSealingKey(fs::path path) : path_(std::move(path)) {}
  std::string describe() const override { return "gramine " + path_.string(); }
  Result<SecretBytes> raw_key() const override {
    MOSS_ASSIGN_OR_RETURN(SecretBytes key, read_secret_file(path_, 64));
    if (key.size() != 16 && key.size() != 32) {
      return failed_precondition("{}: sealing key of {} bytes (expected 16 or 32)", path_.string(),
                                 key.size());
    }
    return key;
  }

 private:
  fs::path path_;
};

class FileSealingKey final : public SealingKeySource {
 public:
  FileSealingKey(fs::path path, bool create) : path_(std::move(path)), create_(create) {}
  std::string describe() const override { return "file " + path_.string(); }
  Result<SecretBytes> raw_key() const override {
    std::error_code ec;
    if (!fs::exists(path_, ec)) {
      if (!create_) return not_found("sealing key file {} does not exist", path_.string());
      MOSS_ASSIGN_OR_RETURN(SecretBytes fresh, crypto::random_secret(32));
      MOSS_RETURN_IF_ERROR(write_file(path_, fresh.span(), 0600));
    }
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return internal_error("stat {}", path_.string());
    if (st.st_mode & 077) {
      return permission_denied("sealing key file {} is readable by others (chmod 600)", path_.string());
    }
    MOSS_ASSIGN_OR_RETURN(SecretBytes key, read_secret_file(path_, 64));
    if (key.size() != 32) return data_loss("sealing key file {} is not 32 bytes", path_.string());
    return key;
  }

 private:
  fs::path path_;
  bool create_;
};

}  // namespace

SealingKeySourcePtr make_gramine_sealing_key(fs::path path) {
  return std::make_unique<GramineSealingKey>(std::move(path));
}
SealingKeySourcePtr make_file_sealing_key(fs::path path, bool create) {
  return std::make_unique<FileSealingKey>(std::move(path), create);
}

Result<SecretBytes> derive_sealing_key(const SealingKeySource& source) {
  MOSS_ASSIGN_OR_RETURN(SecretBytes raw, source.raw_key());
  constexpr std::string_view kInfo = "moss-store-sealing-v1";
  return crypto::hkdf_sha256(raw.span(), {}, as_bytes(kInfo), 32);
}

}  // namespace moss::store
