#include "attest/x509.h"

#include <openssl/err.h>

namespace moss::attest::x509 {
namespace {
// sk_X509_free is a macro, so it has no address for ossl::Ptr.
struct X509StackFree {
  void operator()(STACK_OF(X509)* p) const { sk_X509_free(p); }
};
}  // namespace

Result<ossl::X509CrlPtr> parse_der_crl(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  ossl::X509CrlPtr crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl || p != der.data() + der.size()) {
    ossl_clear();
    return invalid_argument("not a DER CRL");
  }
  return crl;
}

Sha256Digest cert_fingerprint(X509* cert) { return sha256(ossl::certificate_der(cert)); }

std::string common_name(const X509_NAME* name) {
  char buf[256] = {0};
  if (X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(name), NID_commonName, buf, sizeof(buf)) < 0)
    return "";
  return buf;
}

Status verify_chain(X509* leaf, std::span<X509* const> untrusted, X509* trusted_root,
                    std::span<X509_CRL* const> crls, std::time_t at) {
  ossl::X509StorePtr store(X509_STORE_new());
  if (!store || X509_STORE_add_cert(store.get(), trusted_root) != 1) return ossl_error("building X509 store");
  for (X509_CRL* crl : crls) X509_STORE_add_crl(store.get(), crl);
  std::unique_ptr<STACK_OF(X509), X509StackFree> chain(sk_X509_new_null());
  for (X509* c : untrusted) sk_X509_push(chain.get(), c);
  ossl::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf, chain.get()) != 1)
    return ossl_error("X509_STORE_CTX_init");
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, at);
  // Only the pinned root is a trust anchor; partial chains to an intermediate are not allowed.
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (!crls.empty()) flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
  X509_VERIFY_PARAM_set_flags(param, flags);
  int rc = X509_verify_cert(ctx.get());
  ossl_clear();
  if (rc != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    X509* bad = X509_STORE_CTX_get_current_cert(ctx.get());
    std::string who = bad ? common_name(X509_get_subject_name(bad)) : std::string("?");
    return unauthenticated("{} (at '{}')", X509_verify_cert_error_string(err), who);
  }
  return Status::Ok();
}

}  // namespace moss::attest::x509
