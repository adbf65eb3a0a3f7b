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

nlohmann::ordered_json doc(const std::string& text) {
  return parse_json_strict(text, "doc").value_or_die();
}

// An error names the field and never echoes the value (which may be secret).
void expect_refused(const Status& s, std::string_view field, std::string_view value = "") {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.message().find(field), std::string::npos) << s.message();
  if (!value.empty()) {
    EXPECT_EQ(s.message().find(value), std::string::npos) << s.message();
  }
}

TEST(StrictJsonFieldsTest, ObjectsMustHaveExactlyTheAllowedKeys) {
  EXPECT_TRUE(check_object_keys(doc(R"({"a":1})"), {"a"}, {"b"}).ok());
  EXPECT_TRUE(check_object_keys(doc(R"({"a":1,"b":2})"), {"a"}, {"b"}).ok());
  expect_refused(check_object_keys(doc(R"({"a":1,"c":2})"), {"a"}, {"b"}), "'c'");
  expect_refused(check_object_keys(doc(R"({"b":2})"), {"a"}, {"b"}), "'a'");
  EXPECT_FALSE(check_object_keys(doc("[1]"), {}).ok());
  // An unknown key that could forge a log line is not quoted.
  auto s = check_object_keys(doc(R"({"x\ny":1})"), {});
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  EXPECT_NE(s.message().find("a name of 3 bytes"), std::string::npos);

  auto parsed = parse_json_object(R"({"a":1,"a":2})", "body", {"a"});
  EXPECT_NE(parsed.status().message().find("duplicate key"), std::string::npos);
  auto unknown = parse_json_object(R"({"z":1})", "body", {}, {"a"});
  EXPECT_EQ(unknown.status().message(), "body: unknown field 'z'");
  EXPECT_TRUE(parse_json_object(R"({"a":1})", "body", {"a"}).ok());
}

TEST(StrictJsonFieldsTest, StringsAreTypedAndBounded) {
  auto j = doc(R"({"s":"secret-value","n":5,"e":""})");
  EXPECT_EQ(string_field(j, "s", 12).value_or_die(), "secret-value");
  expect_refused(string_field(j, "s", 11).status(), "'s'", "secret-value");
  expect_refused(string_field(j, "n", 100).status(), "'n'");
  expect_refused(string_field(j, "missing", 100).status(), "'missing'");
  EXPECT_EQ(string_field(j, "e", 0).value_or_die(), "");
  EXPECT_EQ(string_field_or(j, "missing", 10, "dflt").value_or_die(), "dflt");
  expect_refused(string_field_or(j, "n", 10, "dflt").status(), "'n'");
}

TEST(StrictJsonFieldsTest, IntegersAreRangeCheckedAndNeverFloatsOrBooleans) {
  auto j = doc(R"({"i":7,"neg":-3,"f":7.0,"b":true,"s":"7","huge":18446744073709551615,
                   "max":9223372036854775807,"min":-9223372036854775808})");
  EXPECT_EQ(integer_field(j, "i", 0, 10).value_or_die(), 7);
  EXPECT_EQ(integer_field(j, "neg", -3, 0).value_or_die(), -3);
  expect_refused(integer_field(j, "i", 8, 10).status(), "[8, 10]");
  expect_refused(integer_field(j, "neg", -2, 10).status(), "'neg'");
  expect_refused(integer_field(j, "f", 0, 10).status(), "'f'");
  expect_refused(integer_field(j, "b", 0, 10).status(), "'b'");
  expect_refused(integer_field(j, "s", 0, 10).status(), "'s'");
  // Above INT64_MAX must not wrap to a negative number that passes a signed range.
  expect_refused(integer_field(j, "huge", INT64_MIN, INT64_MAX).status(), "'huge'");
  EXPECT_EQ(integer_field(j, "max", 0, INT64_MAX).value_or_die(), INT64_MAX);
  EXPECT_EQ(integer_field(j, "min", INT64_MIN, 0).value_or_die(), INT64_MIN);
  expect_refused(integer_field(j, "i", -10, -1).status(), "'i'");  // unsigned vs negative max
  EXPECT_EQ(integer_field_or(j, "missing", 0, 10, 4).value_or_die(), 4);
  expect_refused(integer_field_or(j, "f", 0, 10, 4).status(), "'f'");
}

TEST(StrictJsonFieldsTest, BooleansArraysAndObjects) {
  auto j = doc(R"({"t":true,"one":1,"a":[1,2,3],"o":{"x":1,"y":2}})");
  EXPECT_TRUE(bool_field(j, "t").value_or_die());
  expect_refused(bool_field(j, "one").status(), "'one'");
  EXPECT_FALSE(bool_field_or(j, "missing", false).value_or_die());
  expect_refused(bool_field_or(j, "one", false).status(), "'one'");

  EXPECT_EQ(array_field(j, "a", 3).value_or_die()->size(), 3u);
  expect_refused(array_field(j, "a", 2).status(), "'a'");
  expect_refused(array_field(j, "o", 10).status(), "'o'");
  EXPECT_EQ(object_field(j, "o", 2).value_or_die()->size(), 2u);
  expect_refused(object_field(j, "o", 1).status(), "'o'");
  expect_refused(object_field(j, "a", 10).status(), "'a'");
  expect_refused(object_field(j, "missing", 10).status(), "'missing'");
  // A reader on something that is not an object fails instead of throwing.
  EXPECT_FALSE(string_field(doc("[1]"), "s", 10).ok());
  EXPECT_FALSE(integer_field_or(doc("[1]"), "s", 0, 1, 0).ok());
}

}  // namespace
}  // namespace moss
