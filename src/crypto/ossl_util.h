// Private to src/crypto: RAII for OpenSSL objects and the one place OpenSSL's error queue turns
// into a Status (like oneDNN's error::wrap_c_api). Not part of the public crypto API.
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace moss::crypto::detail {

struct CipherCtxFree { void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct MdCtxFree { void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); } };
struct KdfFree { void operator()(EVP_KDF* p) const { EVP_KDF_free(p); } };
struct KdfCtxFree { void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); } };
struct MacFree { void operator()(EVP_MAC* p) const { EVP_MAC_free(p); } };
struct MacCtxFree { void operator()(EVP_MAC_CTX* p) const { EVP_MAC_CTX_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };

using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using KdfPtr = std::unique_ptr<EVP_KDF, KdfFree>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;
using MacPtr = std::unique_ptr<EVP_MAC, MacFree>;
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;

// internal error "<what>: <first queued OpenSSL reason>", clearing the queue so that a stale
// error never shows up in a later, unrelated message.
Status ossl_error(std::string_view what);
// An unencrypted PEM of `pkey`'s private key, through a secure-heap BIO (wiped when freed).
Result<SecretBytes> private_key_pem(EVP_PKEY* pkey, std::string_view what);
// The SPKI PEM ("BEGIN PUBLIC KEY") of `pkey`.
Result<std::string> public_key_pem(EVP_PKEY* pkey, std::string_view what);
// The key of an SPKI PEM of at most `max_bytes` (any key type: the caller checks it);
// invalid-argument "<what> PEM too large" / "not a PEM public key" otherwise.
Result<PkeyPtr> public_key_from_pem(std::string_view pem, size_t max_bytes, std::string_view what);
// The key of an unencrypted PEM private key of at most `max_bytes`; an encrypted one fails rather
// than prompting on a terminal.
Result<PkeyPtr> private_key_from_pem(std::span<const uint8_t> pem, size_t max_bytes,
                                     std::string_view what);
// Drains the queue without reporting (after a failure that is reported another way, e.g. a bad
// tag or an unparsable PEM from an untrusted file).
void ossl_clear();

}  // namespace moss::crypto::detail
