// Tests for the keyless inference contract: protocol/infer_request.h, infer_result.h, run_kind.h,
// and the envelope framing's conversion (protocol/envelope_frame.h) without any key.
#include "protocol/envelope_frame.h"
#include "protocol/headers.h"
#include "protocol/infer_request.h"
#include "protocol/infer_result.h"
#include "protocol/run_kind.h"

#include <gtest/gtest.h>

#include <map>

namespace moss::protocol {
namespace {

// A well-framed envelope (the framing is public: no key needed to write one).
std::string framed(EnvelopeEncoding encoding, Direction direction = Direction::kResponse) {
  const EnvelopeHeader h{"owner/model", "user-1", "req-1", direction};
  const std::vector<uint8_t> nonce(kEnvelopeNonceBytes, 7), sealed(40, 9);
  if (encoding == EnvelopeEncoding::kJson) return envelope_json_text(h, nonce, sealed);
  std::string out = envelope_binary_prefix(h, nonce, sealed.size());
  out.append(sealed.begin(), sealed.end());
  return out;
}

TEST(RunKindTest, NamesRoundTripAndOthersAreRefused) {
  for (RunKind k : {RunKind::kCold, RunKind::kSwitch, RunKind::kWarm}) {
    EXPECT_EQ(parse_run_kind(run_kind_name(k)).value_or_die(), k);
  }
  EXPECT_EQ(run_kind_name(RunKind::kSwitch), "switch");
  for (std::string_view bad : {"", "Cold", "hot", "warm "}) {
    EXPECT_EQ(parse_run_kind(bad).status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(InferRequestTest, RoundTripsWithAndWithoutDeadline) {
  InferRequest r{"owner/model", framed(EnvelopeEncoding::kJson, Direction::kRequest), std::nullopt};
  const std::string text = r.to_json();
  EXPECT_EQ(text.find("deadline_ms"), std::string::npos);
  auto back = InferRequest::from_json_text(text).value_or_die();
  EXPECT_EQ(back.model_id, r.model_id);
  EXPECT_EQ(back.envelope, r.envelope);
  EXPECT_FALSE(back.deadline_ms.has_value());
  r.deadline_ms = 250;
  EXPECT_EQ(InferRequest::from_json_text(r.to_json()).value_or_die().deadline_ms, 250);
}

TEST(InferRequestTest, MalformedBodiesAreRefused) {
  for (std::string_view bad : {
           R"([])",
           R"({"model_id":"o/m"})",
           R"({"envelope":"x"})",
           R"({"model_id":7,"envelope":"x"})",
           R"({"model_id":"o/m","envelope":{}})",
           R"({"model_id":"o/../m","envelope":"x"})",
           R"({"model_id":"o/m","envelope":"x","colour":1})",
           R"({"model_id":"o/m","model_id":"o/n","envelope":"x"})",
           R"({"model_id":"o/m","envelope":"x","deadline_ms":-1})",
           R"({"model_id":"o/m","envelope":"x","deadline_ms":1.5})",
           R"({"model_id":"o/m","envelope":"x","deadline_ms":3600001})",
           R"({"model_id":"o/m","envelope":"x","deadline_ms":true})",
           R"({"model_id":"o/m","envelope":"x")",
       }) {
    EXPECT_EQ(InferRequest::from_json_text(bad).status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(InferRequestTest, DeadlineHeaderIsDigitsInRange) {
  EXPECT_EQ(parse_deadline_ms("0").value_or_die(), 0);
  EXPECT_EQ(parse_deadline_ms("3600000").value_or_die(), 3'600'000);
  for (std::string_view bad : {"", "-1", "+5", "5.0", " 5", "3600001", "99999999999", "5ms"}) {
    EXPECT_FALSE(parse_deadline_ms(bad).ok()) << bad;
  }
}

TEST(InferResultTest, JsonResultRoundTrips) {
  InferResult r;
  r.envelope = framed(EnvelopeEncoding::kJson);
  r.run = RunKind::kCold;
  r.timing_ms = {{"inference", 3.5}, {"total", 9}};
  r.instance = {{"instance_id", "ab"}, {"models", nlohmann::ordered_json::array()}};
  r.packer = {{"instance", "i0"}};
  auto back = InferResult::from_json_text(r.to_json()).value_or_die();
  EXPECT_EQ(back.envelope, r.envelope);
  EXPECT_EQ(back.run, RunKind::kCold);
  EXPECT_EQ(back.timing_ms, r.timing_ms);
  EXPECT_EQ(back.instance, r.instance);
  EXPECT_EQ(back.packer, r.packer);
  EXPECT_FALSE(back.error.has_value());
  EXPECT_EQ(back.to_json(), r.to_json());
}

TEST(InferResultTest, SealedErrorRoundTripsInBothWires) {
  InferResult r;
  r.envelope = framed(EnvelopeEncoding::kJson);
  r.error = SealedError{ErrorCode::kInvalidArgument, "bad-input"};
  auto back = InferResult::from_json_text(r.to_json()).value_or_die();
  ASSERT_TRUE(back.error.has_value());
  EXPECT_EQ(back.error->code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(back.error->category, "bad-input");
  EXPECT_FALSE(back.run.has_value());

  ASSERT_TRUE(r.convert_envelope_to(EnvelopeEncoding::kBinary).ok());
  std::map<std::string, std::string, std::less<>> headers;
  for (auto& [n, v] : r.binary_headers()) headers[std::string(n)] = v;
  EXPECT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[kErrorCategoryHeader], "bad-input");
  auto lookup = [&](std::string_view n) -> std::optional<std::string_view> {
    auto it = headers.find(n);
    if (it == headers.end()) return std::nullopt;
    return std::string_view(it->second);
  };
  auto bin = InferResult::from_http(kEnvelopeMediaType, r.envelope, lookup, ErrorCode::kInvalidArgument).value_or_die();
  ASSERT_TRUE(bin.error.has_value());
  EXPECT_EQ(bin.error->category, "bad-input");
  // A failed binary answer without a category is no sealed error.
  headers.clear();
  EXPECT_FALSE(InferResult::from_binary(r.envelope, lookup, ErrorCode::kInvalidArgument).ok());
}

TEST(InferResultTest, BinaryResultRoundTripsThroughHeaders) {
  InferResult r;
  r.envelope = framed(EnvelopeEncoding::kBinary);
  r.run = RunKind::kWarm;
  r.timing_ms = {{"total", 1}};
  r.instance = {{"instance_id", "ab"}};
  r.packer = {{"decision", "warm"}};
  std::map<std::string, std::string, std::less<>> headers;
  for (auto& [n, v] : r.binary_headers()) headers[std::string(n)] = v;
  EXPECT_EQ(headers.at(kRunHeader), "warm");
  auto lookup = [&](std::string_view n) -> std::optional<std::string_view> {
    auto it = headers.find(n);
    if (it == headers.end()) return std::nullopt;
    return std::string_view(it->second);
  };
  auto back = InferResult::from_http(kEnvelopeMediaType, r.envelope, lookup, std::nullopt).value_or_die();
  EXPECT_EQ(back.envelope, r.envelope);  // the body as it came
  EXPECT_EQ(back.run, RunKind::kWarm);
  EXPECT_EQ(back.timing_ms, r.timing_ms);
  EXPECT_EQ(back.instance, r.instance);
  EXPECT_EQ(back.packer, r.packer);
  // Converted to JSON and back, the envelope is the same message.
  ASSERT_TRUE(back.convert_envelope_to(EnvelopeEncoding::kJson).ok());
  EXPECT_EQ(back.envelope, framed(EnvelopeEncoding::kJson));
  ASSERT_TRUE(back.convert_envelope_to(EnvelopeEncoding::kBinary).ok());
  EXPECT_EQ(back.envelope, r.envelope);
  // Malformed headers and a JSON body under the binary media type are refused.
  headers[kTimingHeader] = "{not json";
  EXPECT_FALSE(InferResult::from_binary(r.envelope, lookup, std::nullopt).ok());
  headers[kTimingHeader] = "[1]";
  EXPECT_FALSE(InferResult::from_binary(r.envelope, lookup, std::nullopt).ok());
  headers.erase(kTimingHeader);
  headers[kRunHeader] = "lukewarm";
  EXPECT_FALSE(InferResult::from_binary(r.envelope, lookup, std::nullopt).ok());
  headers.erase(kRunHeader);
  EXPECT_FALSE(InferResult::from_binary(framed(EnvelopeEncoding::kJson), lookup, std::nullopt).ok());
}

TEST(InferResultTest, MalformedJsonResultsAreRefused) {
  const std::string env = framed(EnvelopeEncoding::kJson);
  auto with = [&](const std::string& fields) { return R"({"envelope":)" + nlohmann::json(env).dump() + fields + "}"; };
  for (const std::string& bad : {
           std::string(R"({"run":"warm"})"),
           with(R"(,"run":"tepid")"),
           with(R"(,"run":1)"),
           with(R"(,"timing_ms":[1])"),
           with(R"(,"instance":"x")"),
           with(R"(,"colour":1)"),
           with(R"(,"error":"bad")"),
           with(R"(,"error":{"code":"invalid-argument"})"),
           with(R"(,"error":{"code":"invalid-argument","category":"Bad Input\n"})"),
           with(R"(,"error":{"code":"invalid-argument","category":"bad-input","extra":"x"})"),
           with(R"(,"run":"warm","run":"cold")"),
           std::string("not json"),
       }) {
    EXPECT_EQ(InferResult::from_json_text(bad).status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace moss::protocol
