// libFuzzer target for HTTP request parsing as the server does it (net/request_parser.h: the
// server's Beast parser, limits and conversion), then what handlers do with a request: routing
// with path parameters, query parameters, percent-decoding and header lookups.
#include "net/request_parser.h"
#include "net/router.h"

#include <cstdlib>
#include <string_view>

namespace {

const moss::net::Router& router() {
  static const moss::net::Router r = [] {
    moss::net::Router r;
    auto ok = [](const moss::net::Request& q) { return moss::net::Response::text(200, std::string(q.param("id"))); };
    r.get("/healthz", ok);
    r.post("/v1/models/{owner}/{name}/keys", ok);
    r.get("/v1/models/{id}", ok);
    r.del("/v1/models/{owner}/{name}", ok);
    r.add("*", "/static/*", ok);
    return r;
  }();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto req = moss::net::parse_request(bytes, 16 * 1024, 64 * 1024);
  if (!req.ok()) return 0;
  if (req->target != req->path + (req->query.empty() && req->target.find('?') == std::string::npos ? "" : "?" + req->query))
    std::abort();  // split_target lost or invented bytes
  (void)req->query_param("model");
  (void)req->query_param("");
  (void)moss::net::percent_decode(req->path, true);
  (void)req->headers.get("content-type");
  auto res = router().dispatch(*req);
  if (res.status < 100 || res.status > 599) std::abort();
  return 0;
}
