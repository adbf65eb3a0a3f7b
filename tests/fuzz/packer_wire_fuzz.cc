// libFuzzer target for FnPacker's JSON inputs: the pool spec an operator posts
// (packer/pool_spec.h) and both invoke wires (packer/wire.h, protocol/infer_result.h): a binary
// request envelope turned into the JSON /run request, a worker's HTTP answer (headers and body)
// read into the typed result, and a JSON result read and written back identically. The first byte
// picks the parser.
#include "common/strict_json.h"
#include "net/http_message.h"
#include "packer/pool_spec.h"
#include "packer/wire.h"

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moss::packer;
  if (size == 0) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      // As POST /v1/pools reads it (api_server.cc).
      auto j = moss::parse_json_strict(rest, "pool definition", kPoolSpecMaxDepth);
      if (!j.ok()) return 0;
      auto spec = parse_pool_spec(*j);
      if (spec.ok()) {
        // What the packer writes back to its state file must parse to the same spec.
        auto again = parse_pool_spec(spec->to_json(true));
        if (!again.ok() || again->to_json(true) != spec->to_json(true)) std::abort();
      }
      return 0;
    }
    case 1:
      (void)json_request_from_binary(rest);
      return 0;
    case 2: {
      moss::net::Response r;
      r.status = 200;
      // Headers first ("name: value" lines up to a blank line), then the body.
      size_t end = rest.find("\n\n");
      std::string_view head = end == std::string_view::npos ? std::string_view() : rest.substr(0, end);
      r.body = std::string(end == std::string_view::npos ? rest : rest.substr(end + 2));
      while (!head.empty()) {
        size_t nl = head.find('\n');
        std::string_view line = head.substr(0, nl);
        size_t colon = line.find(':');
        if (colon != std::string_view::npos) r.headers.add(line.substr(0, colon), line.substr(colon + 1));
        head = nl == std::string_view::npos ? std::string_view() : head.substr(nl + 1);
      }
      // As a local instance reads its worker's answer (local_backend.cc), 200 and sealed error.
      (void)result_from_worker_answer(r);
      r.status = 400;
      (void)result_from_worker_answer(r);
      return 0;
    }
    default: {
      // As an OpenWhisk instance reads an action result; what parses writes back identically.
      auto result = moss::protocol::InferResult::from_json_text(rest);
      if (result.ok()) {
        auto again = moss::protocol::InferResult::from_json_text(result->to_json());
        if (!again.ok() || again->to_json() != result->to_json()) std::abort();
      }
      if (auto j = moss::parse_json_strict(rest, "action result"); j.ok()) {
        (void)sealed_error_from_action_result(*j);
      }
      return 0;
    }
  }
}
