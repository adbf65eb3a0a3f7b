// libFuzzer target for the KeyService's request handling: the signed-request verifier
// (keyservice/request_auth.h over crypto/signed_request.h) and every request body parser
// (keyservice/request_body.h as each handler applies it), through the real KeyService router over
// a real KeyState (SQLite in /dev/shm). The first byte picks the mode:
//   0..12  a correctly signed request to endpoint N (owner-owned model paths) with the rest of the
//          input as its body, so the fuzzer reaches the body parsers behind the signature check;
//          POST /v1/release carries an attested worker identity, as the TLS hook would attach,
//          on a connection that proved fresh evidence, as POST /v1/attest-connection would mark it;
//   13     "METHOD TARGET\n" then a body, correctly signed: odd targets through router and auth
//          (among them GET /v1/audit/head?at=SEQ, the fork proof);
//   14     the rest as raw HTTP bytes (net::parse_request, the server's parser): forged, stale,
//          malformed signature headers against the verifier;
//   15     the rest as the query of an unsigned GET /v1/audit/head from the attested worker (its
//          key client's fork proof: the chain walk from ?at= to the head).
// Checks: no crash or sanitizer report, every answer is a JSON error or success with a status
// the API documents, and every answer of the KeyService carries a well-formed state version and
// audit head (crypto/keyservice_state.h).
#include "attest/attested_tls.h"
#include "attest/connection_attestation.h"
#include "client/keyservice_client.h"
#include "common/encoding.h"
#include "common/logging.h"
#include "crypto/identity.h"
#include "crypto/keyservice_state.h"
#include "crypto/signed_request.h"
#include "crypto/random.h"
#include "keyservice/key_state.h"
#include "keyservice/service.h"
#include "net/request_parser.h"
#include "store/sealer.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

namespace {

using namespace moss;

struct Fixture {
  std::unique_ptr<keyservice::KeyState> state;
  std::unique_ptr<keyservice::KeyService> service;
  net::Router router;
  crypto::Identity owner;
  std::string model_path;  // "/v1/models/<owner>/m"
  std::shared_ptr<const attest::AttestedPeerIdentity> worker;
  std::shared_ptr<net::ConnectionContext> worker_connection;
};

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

net::Response send_signed(Fixture& f, std::string_view method, std::string_view target, std::string body) {
  auto req = client::sign_request(f.owner, method, target, std::move(body), now_s());
  if (!req.ok()) std::abort();
  std::tie(req->path, req->query) = net::split_target(req->target);
  return f.router.dispatch(*req);
}

Fixture& fixture() {
  static Fixture* f = [] {
    log::set_level("off");
    char dir_template[] = "/dev/shm/moss-ks-fuzz-XXXXXX";
    if (mkdtemp(dir_template) == nullptr) std::abort();
    auto* fx = new Fixture{nullptr, nullptr, {}, crypto::Identity::generate().value_or_die(), {}, nullptr, nullptr};
    auto sealer = store::Sealer::create(crypto::random_secret(32).value_or_die()).value_or_die();
    fx->state = keyservice::KeyState::open(std::filesystem::path(dir_template) / "ks.db", std::move(sealer)).value_or_die();
    keyservice::ServiceOptions options;
    options.rate_per_s = 0;  // no rate limit: every input reaches the parsers
    fx->service = std::make_unique<keyservice::KeyService>(*fx->state, options);
    fx->router = fx->service->make_router();
    const std::string id = fx->owner.principal_id();
    fx->model_path = "/v1/models/" + id + "/m";
    std::string key = base64_encode(fx->owner.public_key().raw());
    if (send_signed(*fx, "POST", "/v1/principals", R"({"public_key":")" + key + "\"}").status >= 300) std::abort();
    auto worker = std::make_shared<attest::AttestedPeerIdentity>();
    worker->claims.measurement = std::string(64, 'a');
    worker->name = "fuzz-worker";
    auto fresh = std::make_shared<attest::ConnectionAttestation>();
    fresh->claims = worker->claims;
    fx->worker = std::move(worker);
    fx->worker_connection =
        std::make_shared<net::ConnectionContext>(std::vector<uint8_t>(net::kConnectionExporterBytes, 7));
    fx->worker_connection->attach(std::move(fresh));
    return fx;
  }();
  return *f;
}

void check(const net::Response& r) {
  if (r.status < 200 || r.status > 599) std::abort();
}

// An answer that went through the KeyService (not the router's own 404/405) carries both headers.
void check_state_headers(const net::Response& r) {
  check(r);
  if (!crypto::parse_keyservice_state(r.headers.get(crypto::kHeaderStateVersion),
                                      r.headers.get(crypto::kHeaderAuditHead))) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Fixture& f = fixture();
  std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const int mode = data[0] % 16;
  struct Endpoint {
    const char* method;
    std::string target;
  };
  const Endpoint endpoints[] = {
      {"POST", "/v1/principals"},
      {"POST", "/v1/release"},
      {"POST", f.model_path + "/keys"},
      {"GET", f.model_path + "/keys"},
      {"POST", f.model_path + "/keys/1/retire"},
      {"DELETE", f.model_path},
      {"POST", f.model_path + "/grants"},
      {"GET", f.model_path + "/grants"},
      {"POST", f.model_path + "/grants/revoke"},
      {"POST", "/v1/request-keys"},
      {"POST", "/v1/request-keys/delete"},
      {"GET", "/v1/audit?model=" + f.model_path.substr(11)},
      {"POST", f.model_path + "/keys"},
  };
  if (mode <= 12) {
    const Endpoint& e = endpoints[mode];
    auto req = client::sign_request(f.owner, e.method, e.target, std::move(rest), now_s());
    if (!req.ok()) std::abort();
    std::tie(req->path, req->query) = net::split_target(req->target);
    if (mode == 1) {
      req->peer = f.worker;
      req->connection = f.worker_connection;
    }
    check_state_headers(f.router.dispatch(*req));
    return 0;
  }
  if (mode == 15) {
    net::Request req = net::Request::make("GET", std::string(crypto::kAuditHeadPath) + "?" + rest, "", "");
    std::tie(req.path, req.query) = net::split_target(req.target);
    req.peer = f.worker;
    req.connection = f.worker_connection;
    net::Response r = f.router.dispatch(req);
    check_state_headers(r);
    // A proof names the sequence it was asked for and the chain value there.
    if (r.status == 200 && req.query_param("at")) {
      auto j = nlohmann::json::parse(r.body, nullptr, false);
      if (!j.is_object() || !j.contains("at_hash") || !j.contains("at")) std::abort();
    }
    return 0;
  }
  if (mode == 13) {
    size_t nl = rest.find('\n');
    std::string line = rest.substr(0, nl);
    size_t sp = line.find(' ');
    if (nl == std::string::npos || sp == std::string::npos) return 0;
    check(send_signed(f, line.substr(0, sp), line.substr(sp + 1), rest.substr(nl + 1)));
    return 0;
  }
  auto req = net::parse_request(rest, 16 * 1024, 1 << 20);
  if (req.ok()) check(f.router.dispatch(*req));
  return 0;
}
