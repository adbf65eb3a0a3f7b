// parse_json_strict: the fast path for simple objects must agree with the full parser on every
// document it accepts, and leave every other document (and every error) to the full parser.
#include "common/strict_json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace moss {
namespace {

// The full parser's view, for comparison: nlohmann without the fast path.
nlohmann::ordered_json reference(const std::string& text) {
  return nlohmann::ordered_json::parse(text);
}

TEST(StrictJsonTest, SimpleObjectsEqualTheFullParser) {
  const std::string long_value(300000, 'A');
  for (const std::string& text : std::vector<std::string>{
           R"({})",
           R"(  {"a":"b"}  )",
           R"({"v":1,"model_id":"o/m","nonce":"AAECAwQFBgcICQoL","n":-42,"z":0})",
           R"({"value":{"model_id":"o/m","envelope":"{\"v\":1,\"x\":\"a\\/b\"}"},"id":7})",
           R"({"esc":"\"\\\/\b\f\n\r\t","k\"ey":"x"})",
           "{\"big\":\"" + long_value + "\",\"n\":123456789012345678}",
       }) {
    auto parsed = parse_json_strict(text, "test");
    ASSERT_TRUE(parsed.ok()) << text.substr(0, 80) << ": " << parsed.status().to_string();
    EXPECT_EQ(*parsed, reference(text)) << text.substr(0, 80);
    EXPECT_EQ(parsed->dump(), reference(text).dump());
  }
}

TEST(StrictJsonTest, IntegersAreTypedAsTheFullParserTypesThem) {
  auto parsed = parse_json_strict(R"({"p":5,"n":-5,"o":{"z":0}})", "test");
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE((*parsed)["p"].is_number_unsigned());
  EXPECT_FALSE((*parsed)["n"].is_number_unsigned());
  EXPECT_TRUE((*parsed)["o"]["z"].is_number_unsigned());
}

TEST(StrictJsonTest, OtherShapesGoThroughTheFullParser) {
  for (const std::string& text :
       std::vector<std::string>{R"({"a":[1,2],"b":true,"c":null,"d":1.5})", R"({"u":"\u00e9"})",
                                R"({"big":123456789012345678901})", R"([1,2,3])", R"({"a":-0})",
                                "{\"utf8\":\"\xc3\xa9\"}"}) {
    auto parsed = parse_json_strict(text, "test");
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_EQ(*parsed, reference(text)) << text;
  }
}

TEST(StrictJsonTest, DuplicateKeysAreRefusedAtAnyLevel) {
  for (const std::string& text :
       std::vector<std::string>{R"({"a":"x","a":"y"})", R"({"o":{"k":1,"k":2}})"}) {
    auto parsed = parse_json_strict(text, "doc");
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_NE(parsed.status().to_string().find("duplicate key"), std::string::npos);
  }
}

TEST(StrictJsonTest, MalformedAndTooDeepDocumentsAreRefused) {
  for (const std::string& text : std::vector<std::string>{
           R"({"a":"x")", R"({"a":"x",})", R"({"a" "x"})", R"({"a":01})", "{\"a\":\"x\"} trailing",
           "{\"ctl\":\"a\x01b\"}", R"({"e":"\q"})", ""}) {
    EXPECT_FALSE(parse_json_strict(text, "doc").ok()) << text;
  }
  EXPECT_FALSE(parse_json_strict(R"({"a":{"b":{"c":{}}}})", "doc", 3).ok());
  EXPECT_TRUE(parse_json_strict(R"({"a":{"b":{"c":{}}}})", "doc", 4).ok());
}

}  // namespace
}  // namespace moss
