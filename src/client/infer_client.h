// The user's side of inference (`moss infer`): encrypt named input tensors under the request key
// registered for (model, worker measurement), send the C3 request to a worker (POST /v1/infer) or
// through FnPacker (POST .../invoke, contract C4), check that the response envelope answers
// exactly this request, decrypt it and write each output as <output dir>/<name>.npy.
// By default the request travels as a binary envelope body (no base64, no JSON), to a worker and
// to FnPacker alike (docs/worker-api.md, "Binary requests"); --wire json sends the JSON request.
// Stateless: thread-safe.
#pragma once

#include "client/client_config.h"
#include "common/secret_bytes.h"
#include "common/status.h"
#include "common/tensor_bundle.h"
#include "protocol/envelope_frame.h"
#include "net/http_message.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace moss::client {

inline constexpr char kPackerTokenEnv[] = "MOSS_PACKER_TOKEN";

enum class Wire {
  kBinary,  // the binary envelope as the body
  kJson,    // {"model_id", "envelope": "<envelope JSON text>"}
};
Result<Wire> parse_wire(std::string_view name);

struct InferOptions {
  std::optional<std::filesystem::path> config;  // client config (contract C2)
  std::string model_id;
  std::vector<std::pair<std::string, std::filesystem::path>> inputs;  // NAME, .npy or .pb file
  std::filesystem::path output_dir;
  std::string endpoint;  // worker base URL, or a FnPacker URL ending in /invoke
  std::string token;     // FnPacker bearer token; empty: $MOSS_PACKER_TOKEN
  std::chrono::milliseconds timeout{120'000};
  Wire wire = Wire::kBinary;
  // When set, the exact request and response bodies (what FnPacker and the platform see: model id
  // and ciphertext envelopes) are written there, for inspection.
  std::filesystem::path save_request;
  std::filesystem::path save_response;
};

struct InferOutcome {
  TensorBundle outputs;
  std::string run;                 // cold | switch | warm
  nlohmann::json timing_ms;        // the worker's breakdown
  nlohmann::json packer;           // FnPacker's annotation, when present
  std::string request_id;
  double round_trip_ms = 0;
};

// The HTTP target for `endpoint`: its path when it ends with /invoke, else <path>/v1/infer.
Result<std::string> infer_target(std::string_view endpoint);

// Opens a response to request (model, user, request id), JSON result or binary envelope
// (by Content-Type): the envelope must be a response to exactly that request under
// `request_key` (a replayed or redirected response fails). A sealed error (the worker opened the
// request and failed, docs/formats.md "Response plaintext") fails with its code, category and
// detail.
Result<InferOutcome> open_infer_response(std::span<const uint8_t> request_key,
                                         const protocol::EnvelopeHeader& request,
                                         const net::Response& response);

// Encrypts, sends, decrypts; does not write files.
Result<InferOutcome> infer(const InferOptions& options, const TensorBundle& inputs);

// `moss infer`: reads the inputs, runs infer(), writes the outputs; with `verbose`, prints the
// run kind and the timing breakdown.
Status run_infer_command(const InferOptions& options, bool verbose, std::ostream& out);

}  // namespace moss::client
