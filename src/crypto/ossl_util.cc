#include "crypto/ossl_util.h"

#include <openssl/err.h>

namespace moss::crypto::detail {

Status ossl_error(std::string_view what) {
  unsigned long code = ERR_get_error();
  char reason[256] = "unknown OpenSSL error";
  if (code != 0) ERR_error_string_n(code, reason, sizeof(reason));
  ERR_clear_error();
  return internal_error("{}: {}", what, reason);
}

void ossl_clear() { ERR_clear_error(); }

}  // namespace moss::crypto::detail
