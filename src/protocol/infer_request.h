// The JSON inference request (docs/worker-api.md C3, docs/packer-api.md C4):
//
//   {"model_id": M, "envelope": "<request envelope, JSON text>"}           to a worker
//   {"model_id": M, "envelope": "...", "deadline_ms": N}                   to FnPacker's invoke
//
// (A binary request is the binary envelope itself as the body, its deadline in
// Moss-Deadline-Ms.) One builder and one strict parser for the client, FnPacker and the worker.
// The envelope is carried as text here; its framing is checked by whoever routes on or opens it.
// Stateless: thread-safe.
#pragma once

#include "common/status.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace moss::protocol {

// The largest wait a request may ask for: an hour.
inline constexpr int64_t kMaxDeadlineMs = 3'600'000;

struct InferRequest {
  std::string model_id;
  std::string envelope;
  // How long the request may wait for an instance (FnPacker's invoke only; a worker ignores it).
  std::optional<int64_t> deadline_ms;

  // The body, JSON text; "deadline_ms" only when set.
  std::string to_json() const;
  // Exactly "model_id" (protocol/ids.h rules), "envelope" (a string) and optionally
  // "deadline_ms" (an integer in [0, kMaxDeadlineMs]); anything else is invalid-argument.
  static Result<InferRequest> from_json(const nlohmann::ordered_json& body);
  static Result<InferRequest> from_json_text(std::string_view text);
};

// The Moss-Deadline-Ms header's value: an integer in [0, kMaxDeadlineMs], digits only.
Result<int64_t> parse_deadline_ms(std::string_view text);

}  // namespace moss::protocol
