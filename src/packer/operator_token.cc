#include "packer/operator_token.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "crypto/random.h"

namespace moss::packer {

Result<std::string> load_or_create_operator_token(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) {
    MOSS_ASSIGN_OR_RETURN(SecretBytes token, crypto::random_secret(32));
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
