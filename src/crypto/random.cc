#include "crypto/random.h"

#include "common/ossl.h"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>

namespace moss::crypto {

Status random_bytes(std::span<uint8_t> out) {
  // RAND_bytes takes an int length; large requests go in slices.
  size_t done = 0;
  while (done < out.size()) {
    size_t n = std::min<size_t>(out.size() - done, INT_MAX / 2);
    if (RAND_bytes(out.data() + done, static_cast<int>(n)) != 1) {
      return ossl_error("secure random generator");
    }
    done += n;
  }
  return Status::Ok();
}

Result<SecretBytes> random_secret(size_t n) {
  SecretBytes secret(n);
  MOSS_RETURN_IF_ERROR(random_bytes(secret.span()));
  return secret;
}

}  // namespace moss::crypto
