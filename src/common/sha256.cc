#include "common/sha256.h"

#include "common/ossl.h"

namespace moss {

Sha256Digest sha256(std::span<const uint8_t> data) {
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 ||
      len != out.size()) {
    ossl_error("SHA-256").check();
  }
  return out;
}

}  // namespace moss
