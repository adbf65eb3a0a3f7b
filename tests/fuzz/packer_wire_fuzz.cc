// libFuzzer target for FnPacker's JSON inputs: the pool spec an operator posts
// (packer/pool_spec.h) and both invoke wires (packer/wire.h): a binary request envelope turned
// into the JSON /run request, a worker's binary answer turned into the JSON result, and a JSON
// result turned into the client's binary answer. The first byte picks the parser.
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
      auto j = nlohmann::json::parse(rest, nullptr, false);
      if (j.is_discarded()) return 0;
      auto spec = parse_pool_spec(j);
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
      (void)json_result_from_binary(r);
      return 0;
    }
    default: {
      // As invoke_binary reads a pool's reply (api_server.cc).
      (void)binary_answer_from_json(nlohmann::json::parse(rest, nullptr, false));
      return 0;
    }
  }
}
