// RenewableCredentials: a TLS certificate and key that can be replaced while servers and clients
// use them, for short-lived certificates (attested TLS: attest/attested_tls.h) renewed in place.
// Every handshake after a replace() presents the new certificate; connections already
// established keep theirs; nothing is restarted or dropped.
//
// With start_renewing(), a thread of its own calls `make` every `every` and installs the result;
// a failed renewal is logged and retried sooner (after a tenth of the period, at most a minute),
// the current credentials stay in use until they are replaced. The thread ends with the object.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/status.h"
#include "net/tls_credentials.h"

namespace moss::net {

class RenewableCredentials;
using RenewableCredentialsPtr = std::shared_ptr<RenewableCredentials>;

class RenewableCredentials {
 public:
  using Maker = std::function<Result<TlsCredentials>()>;

  // Fails when `initial` is not a certificate with its matching private key.
  static Result<RenewableCredentialsPtr> create(TlsCredentials initial);
  ~RenewableCredentials();
  RenewableCredentials(const RenewableCredentials&) = delete;
  RenewableCredentials& operator=(const RenewableCredentials&) = delete;

  // Installs `next` for every later handshake; on an error the current credentials stay.
  Status replace(TlsCredentials next);
  // Starts the renewal thread (once; a second call is an error).
  Status start_renewing(Maker make, std::chrono::milliseconds every);

  // How many times the credentials were replaced, and the current certificate's DER.
  uint64_t generation() const;
  std::vector<uint8_t> certificate_der() const;

  struct Impl;
  // For tls_context.cc: the current certificate and key, as OpenSSL objects.
  const Impl& impl() const { return *impl_; }

 private:
  explicit RenewableCredentials(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moss::net
