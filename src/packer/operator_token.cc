#include "packer/operator_token.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "common/logging.h"
#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace moss::packer {
namespace {

// From the kernel's random generator (getrandom blocks only until it is seeded, at boot): the
// packer links no crypto library for this one token.
Result<SecretBytes> fresh_token_bytes() {
  SecretBytes bytes(32);
  for (size_t got = 0; got < bytes.size();) {
    const ssize_t n = getrandom(bytes.data() + got, bytes.size() - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return internal_error("getrandom: {}", std::strerror(errno));
    got += static_cast<size_t>(n);
  }
  return bytes;
}

}  // namespace

Result<std::string> load_or_create_operator_token(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    MOSS_ASSIGN_OR_RETURN(SecretBytes token, fresh_token_bytes());
    MOSS_RETURN_IF_ERROR(write_text_file(path, hex_encode(token.span()), 0600));
    log::get("packer")->info("created operator token file path={}", path.string());
  }
  MOSS_ASSIGN_OR_RETURN(std::string token, read_text_file(path, 4096));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.size() < kMinOperatorTokenLength) {
    return invalid_argument("token in {} is shorter than {} characters", path.string(),
                            kMinOperatorTokenLength);
  }
  return token;
}

}  // namespace moss::packer
