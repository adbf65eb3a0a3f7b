#include "client/infer_client.h"

#include "client/request_key_file.h"
#include "common/encoding.h"
#include "common/file_util.h"
#include "common/npy.h"
#include "common/reply_error.h"
#include "common/safetensors.h"
#include "common/tensor_file.h"
#include "crypto/envelope.h"
#include "crypto/identity.h"
#include "protocol/ids.h"
#include "crypto/random.h"
#include "net/client.h"
#include "net/error_response.h"
#include "net/url.h"
#include "protocol/infer_request.h"
#include "protocol/infer_result.h"

#include <fmt/format.h>

#include <cstdlib>

namespace moss::client {

namespace {

using Clock = std::chrono::steady_clock;

Status check_output_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') {
    return invalid_argument("output name '{}' cannot be a file name", name);
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':')) {
      return invalid_argument("output name '{}' cannot be a file name", name);
    }
  }
  return Status::Ok();
}

// The worker's answer (protocol/infer_result.h), in either wire (by Content-Type).
Result<protocol::InferResult> parse_answer(const net::Response& r) {
  return protocol::InferResult::from_http(
      r.headers.get_or("Content-Type", ""), r.body, [&](std::string_view name) { return r.headers.get(name); },
      r.status == 200 ? std::nullopt : std::optional<ErrorCode>(net::error_code_for_http_status(r.status)));
}

}  // namespace

Result<std::string> infer_target(std::string_view endpoint) {
  MOSS_ASSIGN_OR_RETURN(net::Url url, net::parse_url(endpoint));
  std::string path = url.target;
  if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  if (path.ends_with("/invoke")) return path;
  if (path == "/") path.clear();
  return path + "/v1/infer";
}

Result<Wire> parse_wire(std::string_view name) {
  if (name == "json") return Wire::kJson;
  if (name == "binary") return Wire::kBinary;
  return invalid_argument("--wire must be binary or json, not '{}'", name);
}

Result<InferOutcome> open_infer_response(std::span<const uint8_t> request_key,
                                         const protocol::EnvelopeHeader& request,
                                         const net::Response& response) {
  protocol::EnvelopeHeader expected = request;
  expected.direction = protocol::Direction::kResponse;
  InferOutcome out;
  out.request_id = request.request_id;
  auto answer = parse_answer(response);
  if (!answer.ok()) {
    return invalid_argument("the response is not a worker result: {}", answer.status().message());
  }
  if (answer->run) out.run = std::string(protocol::run_kind_name(*answer->run));
  out.timing_ms = answer->timing_ms;
  out.packer = answer->packer;
  auto plain = crypto::open_envelope(request_key, expected, answer->envelope);
  if (!plain.ok()) {
    return Status(plain.status().code(),
                  "the response does not answer this request (replayed, redirected or altered): " +
                      plain.status().message());
  }
  MOSS_ASSIGN_OR_RETURN(out.outputs, read_safetensors(plain->span()));
  plain->wipe();
  // The worker's sealed error: its detail was for this user's eyes only.
  MOSS_ASSIGN_OR_RETURN(std::optional<ReplyError> error, reply_error_of(out.outputs));
  if (error) {
    return Status(error_code_from_name(error->code),
                  fmt::format("the worker refused the request ({}): {}", error->category, error->message));
  }
  return out;
}

Result<InferOutcome> infer(const InferOptions& o, const TensorBundle& inputs) {
  MOSS_ASSIGN_OR_RETURN(ClientConfig config, load_client_config(o.config));
  MOSS_ASSIGN_OR_RETURN(RequestKeyFile rk, read_request_key_file(config, o.model_id));
  MOSS_ASSIGN_OR_RETURN(crypto::Identity identity, crypto::Identity::load(config.identity));
  if (o.endpoint.empty()) return invalid_argument("--endpoint is required (a worker URL or FnPacker's /invoke URL)");
  MOSS_ASSIGN_OR_RETURN(net::Url url, net::parse_url(o.endpoint));
  MOSS_ASSIGN_OR_RETURN(std::string target, infer_target(o.endpoint));

  std::array<uint8_t, 16> rid{};
  MOSS_RETURN_IF_ERROR(crypto::random_bytes(rid));
  protocol::EnvelopeHeader header{o.model_id, identity.principal_id(), hex_encode(rid),
                                protocol::Direction::kRequest};
  const bool binary = o.wire == Wire::kBinary;
  MOSS_ASSIGN_OR_RETURN(std::vector<uint8_t> plain, write_safetensors(inputs));
  auto sealed = crypto::seal_envelope(rk.key.span(), header, plain, {},
                                      binary ? protocol::EnvelopeEncoding::kBinary : protocol::EnvelopeEncoding::kJson);
  secure_wipe(plain);
  if (!sealed.ok()) return sealed.status();

  net::ClientOptions co;
  co.host = url.host;
  co.port = url.port;
  co.read_timeout = o.timeout;
  co.max_response_body_bytes = size_t{256} << 20;
  if (url.tls()) {
    net::TlsClientConfig tls;
    MOSS_ASSIGN_OR_RETURN(tls.ca_pem, read_text_file("/etc/ssl/certs/ca-certificates.crt", 8 << 20));
    MOSS_ASSIGN_OR_RETURN(co.tls, net::ClientTlsContext::create(std::move(tls)));
  }
  net::Client client(co);
  net::Request req =
      binary ? net::Request::make("POST", target, std::move(*sealed), protocol::kEnvelopeMediaType)
             : net::Request::make("POST", target,
                                  protocol::InferRequest{o.model_id, std::move(*sealed), std::nullopt}.to_json(),
                                  "application/json");
  std::string token = o.token;
  if (token.empty()) {
    if (const char* t = std::getenv(kPackerTokenEnv)) token = t;
  }
  if (!token.empty()) req.headers.set("Authorization", "Bearer " + token);
  if (!o.save_request.empty()) MOSS_RETURN_IF_ERROR(write_text_file(o.save_request, req.body));
  const auto start = Clock::now();
  auto resp = client.request(req);
  if (!resp.ok()) return Status(resp.status().code(), o.endpoint + ": " + resp.status().message());
  if (!o.save_response.empty()) MOSS_RETURN_IF_ERROR(write_text_file(o.save_response, resp->body));
  if (resp->status != 200) {
    if (auto answer = parse_answer(*resp); answer.ok() && answer->error) {
      // Opened and failed at the worker: the detail is in the envelope, sealed for us.
      auto opened = open_infer_response(rk.key.span(), header, *resp);
      if (opened.ok()) return internal_error("{} answered HTTP {} with a result", o.endpoint, resp->status);
      return Status(opened.status().code(),
                    fmt::format("{} answered HTTP {}: {}", o.endpoint, resp->status, opened.status().message()));
    }
    Status s = net::status_from_response(*resp);
    // OpenWhisk-style {"error": "..."} bodies are not net's shape; show their text.
    nlohmann::json j = nlohmann::json::parse(resp->body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()) {
      s = Status(s.code(), j["error"].get<std::string>());
    }
    return Status(s.code(), fmt::format("{} answered HTTP {}: {}", o.endpoint, resp->status, s.message()));
  }
  MOSS_ASSIGN_OR_RETURN(InferOutcome out, open_infer_response(rk.key.span(), header, *resp));
  out.round_trip_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return out;
}

Status run_infer_command(const InferOptions& o, bool verbose, std::ostream& out) {
  MOSS_RETURN_IF_ERROR(protocol::validate_model_id(o.model_id));
  if (o.inputs.empty()) return invalid_argument("give at least one --input NAME=FILE");
  TensorBundle inputs;
  for (const auto& [name, path] : o.inputs) {
    auto t = read_tensor_file(path);
    if (!t.ok()) return std::move(t).status().with_context("--input " + name);
    MOSS_RETURN_IF_ERROR(inputs.add(name, std::move(t).value()));
  }
  MOSS_ASSIGN_OR_RETURN(InferOutcome r, infer(o, inputs));
  for (const auto& nt : r.outputs.tensors()) MOSS_RETURN_IF_ERROR(check_output_name(nt.name));
  std::error_code ec;
  std::filesystem::create_directories(o.output_dir, ec);
  if (ec) return internal_error("cannot create {}: {}", o.output_dir.string(), ec.message());
  for (const auto& nt : r.outputs.tensors()) {
    // Decrypted outputs are the user's secrets: 0600, like `moss model decrypt`.
    MOSS_RETURN_IF_ERROR(write_npy_file(o.output_dir / (nt.name + ".npy"), nt.tensor, 0600));
    out << (o.output_dir / (nt.name + ".npy")).string() << "\n";
  }
  if (verbose) {
    out << fmt::format("run: {}  request: {}  round trip: {:.2f} ms\n", r.run, r.request_id, r.round_trip_ms);
    if (r.timing_ms.is_object()) {
      for (const auto& [phase, ms] : r.timing_ms.items()) {
        if (ms.is_number()) out << fmt::format("  {:<12} {:10.3f} ms\n", phase, ms.get<double>());
      }
    }
    if (!r.packer.is_null()) out << "packer: " << r.packer.dump() << "\n";
  }
  return Status::Ok();
}

}  // namespace moss::client
