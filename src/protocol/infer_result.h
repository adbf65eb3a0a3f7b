// The answer to one inference request (docs/worker-api.md C3; FnPacker passes it on, C4), in the
// encoding of the request's envelope:
//
//   JSON    200  {"envelope": "<response envelope, JSON text>", "run", "timing_ms", "instance"
//                 [, "packer"]}
//           4xx/5xx, a sealed error: {"error": {"code", "category", "message"}, "envelope"}
//   binary  the binary response envelope as the body (Content-Type kEnvelopeMediaType), the rest
//           in headers (protocol/headers.h): Moss-Run, Moss-Timing-Ms, Moss-Instance,
//           Moss-Packer, or for a sealed error its status and Moss-Error-Category.
//
// One builder and one strict parser for the worker, FnPacker and the client; the HTTP status of
// a sealed error is its code's (net::http_status_for), chosen by the caller, which owns HTTP.
// Nothing here is secret: the envelope is sealed, the rest is the cleartext the contract allows.
// Stateless: thread-safe.
#pragma once

#include "common/status.h"
#include "protocol/envelope_frame.h"
#include "protocol/run_kind.h"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moss::protocol {

// An opened request that failed: its detail is sealed in the envelope; in cleartext only these.
struct SealedError {
  ErrorCode code = ErrorCode::kInternal;
  std::string category;  // protocol/error_category.h
};

struct InferResult {
  std::string envelope;  // the response envelope, either encoding, as received
  // Set on success (a sealed error has none of run, timing, instance).
  std::optional<RunKind> run;
  nlohmann::ordered_json timing_ms;  // the worker's breakdown (object), or null
  nlohmann::ordered_json instance;   // the worker's status object, or null
  nlohmann::ordered_json packer;     // FnPacker's annotation (object), or null
  std::optional<SealedError> error;

  EnvelopeEncoding encoding() const { return envelope_encoding(envelope); }

  // The JSON body (the envelope must be in its JSON form).
  std::string to_json() const;
  // A JSON body; a worker's or FnPacker's, so only the known fields, typed.
  static Result<InferResult> from_json(const nlohmann::ordered_json& body);
  static Result<InferResult> from_json_text(std::string_view text);

  // The headers of a binary answer (the body is `envelope`, in its binary form).
  std::vector<std::pair<std::string_view, std::string>> binary_headers() const;
  // A binary answer: `body` the binary envelope, `header` looks a header up by name, `error_code`
  // the code a non-200 status stands for (nullopt for 200). A non-200 answer is a sealed error
  // only with a category header; else invalid-argument.
  using HeaderLookup = std::function<std::optional<std::string_view>(std::string_view name)>;
  static Result<InferResult> from_binary(std::string body, const HeaderLookup& header,
                                         std::optional<ErrorCode> error_code);

  // An HTTP answer in either encoding, by its `content_type` (kEnvelopeMediaType: binary).
  static Result<InferResult> from_http(std::string_view content_type, std::string body,
                                       const HeaderLookup& header, std::optional<ErrorCode> error_code);

  // Re-encodes the envelope (protocol/envelope_frame.h convert_envelope), for a relay whose two
  // sides speak different wires; a no-op when it is in `to` already.
  Status convert_envelope_to(EnvelopeEncoding to);
};

}  // namespace moss::protocol
