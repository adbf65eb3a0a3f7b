#include "net/renewable_credentials.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "common/ossl.h"
#include "net/tls_context.h"

namespace moss::net {
namespace {

using ossl::X509Ptr;

constexpr size_t kMaxKeyPemBytes = 1 << 20;

// One generation of credentials, parsed once; handshakes share it read-only.
struct Material {
  X509Ptr leaf;
  std::vector<X509Ptr> chain;
  ossl::PkeyPtr key;
  std::vector<uint8_t> leaf_der;
};

Result<std::shared_ptr<const Material>> parse_material(const TlsCredentials& c) {
  auto m = std::make_shared<Material>();
  auto certs = ossl::parse_pem_chain(c.cert_pem, kMaxChainCertificates);
  if (!certs.ok()) return certs.status().with_context("renewable credentials");
  m->leaf = std::move((*certs)[0]);
  for (size_t i = 1; i < certs->size(); ++i) m->chain.push_back(std::move((*certs)[i]));
  auto key = ossl::read_private_key_pem(c.key_pem.span(), kMaxKeyPemBytes, "key");
  if (!key.ok() || X509_check_private_key(m->leaf.get(), key->get()) != 1) {
    ossl_clear();
    return invalid_argument("renewable credentials: the private key is missing or does not match the certificate");
  }
  m->key = std::move(key).value();
  m->leaf_der = ossl::certificate_der(m->leaf.get());
  if (m->leaf_der.empty()) return internal_error("renewable credentials: certificate does not encode");
  return std::shared_ptr<const Material>(std::move(m));
}

}  // namespace

struct RenewableCredentials::Impl {
  mutable std::mutex mu;
  std::shared_ptr<const Material> current;  // guarded by mu
  uint64_t generation = 0;                  // guarded by mu
  bool stopping = false;                    // guarded by mu
  std::condition_variable wake;
  std::thread renewer;

  std::shared_ptr<const Material> get() const {
    std::lock_guard lock(mu);
    return current;
  }
};

Result<RenewableCredentialsPtr> RenewableCredentials::create(TlsCredentials initial) {
  MOSS_ASSIGN_OR_RETURN(auto material, parse_material(initial));
  auto impl = std::make_unique<Impl>();
  impl->current = std::move(material);
  return RenewableCredentialsPtr(new RenewableCredentials(std::move(impl)));
}

RenewableCredentials::RenewableCredentials(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RenewableCredentials::~RenewableCredentials() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->renewer.joinable()) impl_->renewer.join();
}

Status RenewableCredentials::replace(TlsCredentials next) {
  MOSS_ASSIGN_OR_RETURN(auto material, parse_material(next));
  std::lock_guard lock(impl_->mu);
  impl_->current = std::move(material);
  ++impl_->generation;
  return Status::Ok();
}

Status RenewableCredentials::start_renewing(Maker make, std::chrono::milliseconds every) {
  if (every.count() <= 0) return invalid_argument("renewal period must be positive");
  std::lock_guard lock(impl_->mu);
  if (impl_->renewer.joinable()) return failed_precondition("credentials are already being renewed");
  impl_->renewer = std::thread([this, make = std::move(make), every] {
    const auto retry = std::min<std::chrono::milliseconds>(every / 10, std::chrono::minutes(1));
    auto wait = every;
    std::unique_lock lock(impl_->mu);
    while (!impl_->wake.wait_for(lock, wait, [this] { return impl_->stopping; })) {
      lock.unlock();
      auto next = make();
      Status s = next.ok() ? replace(std::move(next).value()) : next.status();
      if (s.ok()) {
        wait = every;
        log::get("net")->info("tls credentials renewed next_in_s={}", every.count() / 1000);
      } else {
        wait = retry;
        log::get("net")->warn("tls credential renewal failed retry_in_ms={} error={}", retry.count(), s.to_string());
      }
      lock.lock();
    }
  });
  return Status::Ok();
}

uint64_t RenewableCredentials::generation() const {
  std::lock_guard lock(impl_->mu);
  return impl_->generation;
}

std::vector<uint8_t> RenewableCredentials::certificate_der() const { return impl_->get()->leaf_der; }

namespace detail {

int install_credentials(SSL* ssl, const RenewableCredentials& credentials) {
  auto m = credentials.impl().get();
  if (SSL_use_certificate(ssl, m->leaf.get()) != 1 || SSL_use_PrivateKey(ssl, m->key.get()) != 1) {
    ossl_clear();
    return 0;
  }
  SSL_clear_chain_certs(ssl);
  for (const auto& c : m->chain) SSL_add1_chain_cert(ssl, c.get());
  return 1;
}

}  // namespace detail
}  // namespace moss::net
