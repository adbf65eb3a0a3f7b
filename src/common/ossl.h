// MOSS's one OpenSSL layer, below every part that calls OpenSSL (crypto, net, attest): owning
// handles for OpenSSL objects, the one place OpenSSL's error queue turns into a Status, and the
// PEM/DER reading and writing of keys and certificates those parts share. For .cc files and for
// headers that must name X.509 objects (attest's); other public headers stay free of OpenSSL.
// Stateless: thread-safe (a handle itself is not shared).
#pragma once

#include "common/secret_bytes.h"
#include "common/status.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/x509.h>

#include <cstdint>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moss {

// internal error "<what>: <OpenSSL's queued reasons>", clearing the queue so that a stale error
// never shows up in a later, unrelated message.
Status ossl_error(std::string_view what);
// The queued reasons ("; "-joined, "no OpenSSL detail" when none), clearing the queue: for
// failures reported with another code than internal.
std::string ossl_error_text();
// Drains the queue without reporting (after a failure that is reported another way, e.g. a bad
// tag or an unparsable PEM from an untrusted file).
void ossl_clear();

namespace ossl {

// unique_ptr deleter calling OpenSSL's free function for the type.
template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const { Free(p); }
};
template <typename T, auto Free>
using Ptr = std::unique_ptr<T, Deleter<Free>>;

using BioPtr = Ptr<BIO, BIO_free_all>;
using BnPtr = Ptr<BIGNUM, BN_free>;
using PkeyPtr = Ptr<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtxPtr = Ptr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtxPtr = Ptr<EVP_MD_CTX, EVP_MD_CTX_free>;
using CipherCtxPtr = Ptr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using KdfPtr = Ptr<EVP_KDF, EVP_KDF_free>;
using KdfCtxPtr = Ptr<EVP_KDF_CTX, EVP_KDF_CTX_free>;
using MacPtr = Ptr<EVP_MAC, EVP_MAC_free>;
using MacCtxPtr = Ptr<EVP_MAC_CTX, EVP_MAC_CTX_free>;
using X509Ptr = Ptr<X509, X509_free>;
using X509CrlPtr = Ptr<X509_CRL, X509_CRL_free>;
using X509StorePtr = Ptr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = Ptr<X509_STORE_CTX, X509_STORE_CTX_free>;

// A read-only memory BIO over `bytes` (borrowed: they must outlive it).
BioPtr memory_bio(std::span<const uint8_t> bytes);
BioPtr memory_bio(std::string_view text);

// The key of an SPKI PEM ("BEGIN PUBLIC KEY") of at most `max_bytes`, any key type (the caller
// checks it); invalid-argument "<what> PEM too large" / "not a PEM public key" otherwise.
Result<PkeyPtr> read_public_key_pem(std::string_view pem, size_t max_bytes, std::string_view what);
// The key of an unencrypted PEM private key of at most `max_bytes`; an encrypted one fails
// rather than prompting on a terminal.
Result<PkeyPtr> read_private_key_pem(std::span<const uint8_t> pem, size_t max_bytes,
                                     std::string_view what);
// An unencrypted PKCS#8 PEM of `pkey`'s private key, through a secure-heap BIO (wiped when freed).
Result<SecretBytes> private_key_pem(EVP_PKEY* pkey, std::string_view what);
// The SPKI PEM of `pkey`'s public key.
Result<std::string> public_key_pem(EVP_PKEY* pkey, std::string_view what);

// Every certificate of a PEM bundle in order (reading stops at the first block that is not a
// certificate); fails on zero certificates or more than `max_certs`.
Result<std::vector<X509Ptr>> parse_pem_chain(std::string_view pem, size_t max_certs = 8);
// The DER encoding of `cert` (empty if it does not encode).
std::vector<uint8_t> certificate_der(X509* cert);
// An ASN1_TIME as Unix seconds (UTC).
Result<std::time_t> asn1_time_to_unix(const ASN1_TIME* t);

}  // namespace ossl
}  // namespace moss
