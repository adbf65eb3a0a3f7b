#include "protocol/infer_result.h"

#include "common/strict_json.h"
#include "protocol/error_category.h"
#include "protocol/headers.h"

namespace moss::protocol {

namespace {

using ojson = nlohmann::ordered_json;

// The instance status object nests models in an array of objects; nothing goes deeper.
constexpr int kMaxDepth = 8;

// A category is one of a few fixed words; bounded and plain so it is safe in a header and a log.
Status check_category(std::string_view c) {
  if (c.empty() || c.size() > 64) return invalid_argument("a sealed error's category must be 1..64 bytes");
  for (char ch : c) {
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) {
      return invalid_argument("a sealed error's category may contain only [a-z0-9-]");
    }
  }
  return Status::Ok();
}

Result<ojson> object_or_null(const ojson& value, std::string_view what) {
  if (!value.is_object() && !value.is_null()) return invalid_argument("'{}' must be a JSON object", what);
  return value;
}

Result<ojson> header_object(const InferResult::HeaderLookup& header, const char* name) {
  auto text = header(name);
  if (!text) return ojson();
  MOSS_ASSIGN_OR_RETURN(ojson j, parse_json_strict(*text, name, kMaxDepth));
  return object_or_null(j, name);
}

}  // namespace

std::string InferResult::to_json() const {
  ojson j;
  if (error) {
    j["error"] = {{"code", error_code_name(error->code)},
                  {"category", error->category},
                  {"message", sealed_failure_message(error->category)}};
    j["envelope"] = envelope;
    return j.dump();
  }
  j["envelope"] = envelope;
  if (run) j["run"] = run_kind_name(*run);
  j["timing_ms"] = timing_ms;
  j["instance"] = instance;
  if (!packer.is_null()) j["packer"] = packer;
  return j.dump();
}

Result<InferResult> InferResult::from_json(const ojson& body) {
  if (!body.is_object()) return invalid_argument("an inference result must be a JSON object");
  InferResult r;
  for (const auto& [key, value] : body.items()) {
    if (key == "envelope") {
      if (!value.is_string()) return invalid_argument("'envelope' must be a string");
      r.envelope = value.get<std::string>();
    } else if (key == "run") {
      if (!value.is_string()) return invalid_argument("'run' must be a string");
      MOSS_ASSIGN_OR_RETURN(r.run, parse_run_kind(value.get_ref<const std::string&>()));
    } else if (key == "timing_ms" || key == "instance" || key == "packer") {
      MOSS_ASSIGN_OR_RETURN(ojson j, object_or_null(value, key));
      (key == "timing_ms" ? r.timing_ms : key == "instance" ? r.instance : r.packer) = std::move(j);
    } else if (key == "error") {
      if (!value.is_object()) return invalid_argument("'error' must be a JSON object");
      for (const auto& [field, v] : value.items()) {
        if ((field != "code" && field != "category" && field != "message") || !v.is_string()) {
          return invalid_argument("a sealed error has only the strings code, category and message");
        }
      }
      if (!value.contains("code") || !value.contains("category")) {
        return invalid_argument("a sealed error needs a code and a category");
      }
      SealedError e;
      e.code = error_code_from_name(value["code"].get_ref<const std::string&>());
      e.category = value["category"].get<std::string>();
      MOSS_RETURN_IF_ERROR(check_category(e.category));
      r.error = std::move(e);
    } else {
      return invalid_argument("an inference result has an unknown key {}", quote_input_name(key));
    }
  }
  if (!body.contains("envelope")) return invalid_argument("an inference result needs its 'envelope'");
  if (r.encoding() != EnvelopeEncoding::kJson) {
    return invalid_argument("a JSON inference result carries the envelope's JSON form");
  }
  return r;
}

Result<InferResult> InferResult::from_json_text(std::string_view text) {
  MOSS_ASSIGN_OR_RETURN(ojson body, parse_json_strict(text, "inference result", kMaxDepth));
  return from_json(body);
}

std::vector<std::pair<std::string_view, std::string>> InferResult::binary_headers() const {
  std::vector<std::pair<std::string_view, std::string>> out;
  if (error) {
    out.emplace_back(kErrorCategoryHeader, error->category);
    return out;
  }
  if (run) out.emplace_back(kRunHeader, std::string(run_kind_name(*run)));
  if (!timing_ms.is_null()) out.emplace_back(kTimingHeader, timing_ms.dump());
  if (!instance.is_null()) out.emplace_back(kInstanceHeader, instance.dump());
  if (!packer.is_null()) out.emplace_back(kPackerHeader, packer.dump());
  return out;
}

Result<InferResult> InferResult::from_binary(std::string body, const HeaderLookup& header,
                                             std::optional<ErrorCode> error_code) {
  InferResult r;
  r.envelope = std::move(body);
  if (r.encoding() != EnvelopeEncoding::kBinary) {
    return invalid_argument("a binary inference result's body must be a binary envelope");
  }
  if (error_code) {
    auto category = header(kErrorCategoryHeader);
    if (!category) return invalid_argument("a failed binary answer without {} is no sealed error", kErrorCategoryHeader);
    MOSS_RETURN_IF_ERROR(check_category(*category));
    r.error = SealedError{*error_code, std::string(*category)};
    return r;
  }
  if (auto run = header(kRunHeader)) {
    MOSS_ASSIGN_OR_RETURN(r.run, parse_run_kind(*run));
  }
  MOSS_ASSIGN_OR_RETURN(r.timing_ms, header_object(header, kTimingHeader));
  MOSS_ASSIGN_OR_RETURN(r.instance, header_object(header, kInstanceHeader));
  MOSS_ASSIGN_OR_RETURN(r.packer, header_object(header, kPackerHeader));
  return r;
}

Result<InferResult> InferResult::from_http(std::string_view content_type, std::string body,
                                           const HeaderLookup& header, std::optional<ErrorCode> error_code) {
  if (content_type == kEnvelopeMediaType) return from_binary(std::move(body), header, error_code);
  return from_json_text(body);
}

Status InferResult::convert_envelope_to(EnvelopeEncoding to) {
  if (encoding() == to) return Status::Ok();
  MOSS_ASSIGN_OR_RETURN(envelope, convert_envelope(envelope, to));
  return Status::Ok();
}

}  // namespace moss::protocol
