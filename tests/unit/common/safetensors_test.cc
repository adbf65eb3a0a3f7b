#include "common/safetensors.h"

#include <gtest/gtest.h>

#include "common/file_util.h"

#include <cstring>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace moss {
namespace {

Tensor patterned(DType dtype, std::vector<int64_t> shape, int seed = 0) {
  Tensor t = Tensor::zeros(dtype, std::move(shape)).value_or_die();
  for (size_t i = 0; i < t.nbytes(); ++i) {
    t.bytes()[i] = dtype == DType::kBool ? static_cast<uint8_t>((i + seed) % 2)
                                         : static_cast<uint8_t>(i * 13 + seed);
  }
  return t;
}

// A file from a raw header text and data buffer, for hand-made malformed inputs.
std::vector<uint8_t> make_file(const std::string& header, size_t data_bytes) {
  std::string out;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  out += header;
  out.append(data_bytes, '\0');
  return {out.begin(), out.end()};
}

TensorBundle three_tensor_bundle() {
  TensorBundle b;
  EXPECT_TRUE(b.add("input_ids", patterned(DType::kInt64, {1, 8})).ok());
  EXPECT_TRUE(b.add("scale", patterned(DType::kFloat32, {})).ok());
  EXPECT_TRUE(b.add("mask", patterned(DType::kBool, {2, 0, 3})).ok());
  b.mutable_metadata()["format"] = "pt";
  b.mutable_metadata()["request"] = "r-42";
  return b;
}

// Several tensors and metadata come back with the same names, order, shapes and bytes.
TEST(SafetensorsTest, RoundTripsSeveralTensorsAndMetadata) {
  TensorBundle b = three_tensor_bundle();
  auto bytes = write_safetensors(b);
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  auto back = read_safetensors(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back->tensors()[i].name, b.tensors()[i].name);
    EXPECT_TRUE(back->tensors()[i].tensor.equals(b.tensors()[i].tensor)) << b.tensors()[i].name;
  }
  EXPECT_EQ(back->metadata(), b.metadata());
  ASSERT_NE(back->find("scale"), nullptr);
  EXPECT_EQ(back->find("nope"), nullptr);
}

// Every dtype of the format round-trips, including BF16 and BOOL.
TEST(SafetensorsTest, RoundTripsEveryDtype) {
  TensorBundle b;
  for (int i = 0; i <= static_cast<int>(DType::kBool); ++i) {
    auto d = static_cast<DType>(i);
    ASSERT_TRUE(b.add(std::string(safetensors_dtype_name(d)), patterned(d, {3, 2}, i)).ok());
  }
  auto back = read_safetensors(write_safetensors(b).value_or_die());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->size(), b.size());
  for (const auto& [name, t] : b.tensors()) EXPECT_TRUE(back->find(name)->equals(t)) << name;
}

// The data buffer starts 8-byte aligned and an empty bundle is a valid file.
TEST(SafetensorsTest, AlignsDataAndWritesEmptyBundles) {
  auto bytes = write_safetensors(three_tensor_bundle()).value_or_die();
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  auto empty = read_safetensors(write_safetensors(TensorBundle()).value_or_die());
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_TRUE(empty->empty());
}

// A file in the exact form Hugging Face's library writes (offsets not in key order) reads.
TEST(SafetensorsTest, ReadsHandWrittenFileWithOffsetsOutOfKeyOrder) {
  auto f = make_file(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]},)"
                     R"("a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", 6);
  f[f.size() - 6] = 7;  // first data byte belongs to "a"
  auto r = read_safetensors(f);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->tensors()[0].name, "a");  // data order
  EXPECT_EQ(r->find("a")->data<uint8_t>()[0], 7);
}

// Names that would break the header are refused by the writer.
TEST(SafetensorsTest, WriterRefusesReservedAndNonUtf8Names) {
  TensorBundle b;
  ASSERT_TRUE(b.add("__metadata__", patterned(DType::kUInt8, {1})).ok());
  EXPECT_FALSE(write_safetensors(b).ok());
  TensorBundle c;
  ASSERT_TRUE(c.add("\xff\xfe", patterned(DType::kUInt8, {1})).ok());
  EXPECT_FALSE(write_safetensors(c).ok());
  EXPECT_EQ(c.add("\xff\xfe", patterned(DType::kUInt8, {1})).code(), ErrorCode::kAlreadyExists);
}

// The file reader streams each tensor from disk and agrees with the buffer reader; truncated
// files and files with trailing bytes are refused the same way.
TEST(SafetensorsTest, FileReaderMatchesBufferReader) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("moss_safetensors_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  TensorBundle b = three_tensor_bundle();
  ASSERT_TRUE(write_safetensors_file(dir / "b.safetensors", b).ok());
  auto back = read_safetensors_file(dir / "b.safetensors");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->size(), b.size());
  for (size_t i = 0; i < b.size(); ++i) EXPECT_TRUE(back->tensors()[i].tensor.equals(b.tensors()[i].tensor));
  EXPECT_EQ(back->metadata(), b.metadata());

  auto bytes = write_safetensors(b).value_or_die();
  for (size_t n : {size_t{0}, size_t{5}, size_t{20}, bytes.size() - 1}) {
    ASSERT_TRUE(write_file(dir / "t.safetensors", {bytes.data(), n}).ok());
    EXPECT_FALSE(read_safetensors_file(dir / "t.safetensors").ok()) << n;
  }
  bytes.push_back(0);
  ASSERT_TRUE(write_file(dir / "t.safetensors", bytes).ok());
  EXPECT_FALSE(read_safetensors_file(dir / "t.safetensors").ok());
  EXPECT_EQ(read_safetensors_file(dir / "missing").status().code(), ErrorCode::kNotFound);
  fs::remove_all(dir);
}

// A bundle keeps names unique, finds by name, and lets a tensor be moved out (freeing its name).
TEST(TensorBundleTest, AddFindAndTakeKeepNamesUnique) {
  TensorBundle b;
  ASSERT_TRUE(b.add("x", patterned(DType::kInt8, {4})).ok());
  EXPECT_EQ(b.add("x", patterned(DType::kInt8, {1})).code(), ErrorCode::kAlreadyExists);
  ASSERT_TRUE(b.add("y", patterned(DType::kInt16, {2})).ok());
  EXPECT_EQ(b.payload_bytes(), 8u);
  auto x = b.take("x");
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->numel(), 4);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.find("x"), nullptr);
  EXPECT_EQ(b.take("x").status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(b.add("x", std::move(x).value()).ok());
  EXPECT_EQ(b.tensors().back().name, "x");
}

// Every strict prefix of a valid file is an error, as is any extra trailing byte.
TEST(SafetensorsTest, RejectsEveryTruncationAndTrailingBytes) {
  auto bytes = write_safetensors(three_tensor_bundle()).value_or_die();
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(read_safetensors({bytes.data(), n}).ok()) << "prefix " << n;
  }
  bytes.push_back(0);
  EXPECT_FALSE(read_safetensors(bytes).ok());
}

// Headers with bad offsets, overlaps, gaps, wrong sizes, dtypes or fields are refused.
TEST(SafetensorsTest, RejectsMalformedHeaders) {
  struct Case {
    const char* header;
    size_t data;
  };
  const Case cases[] = {
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4},   // size mismatch
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8},   // trailing data
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8},   // gap at start
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})", 8},  // overlap
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4},  // same range
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4},   // reversed
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,18446744073709551615]}})", 4},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4},
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4},
      {R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", 4},
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4},
      {R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4},   // wrong dtype string
      {R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", 8},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4},  // unknown field
      {R"({"a":{"dtype":"F32","shape":[1]}})", 4},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4},  // duplicate
      {R"({"__metadata__":{"k":1}})", 0},
      {R"({"__metadata__":{"k":"v","k":"w"}})", 0},
      {R"({"a":[1,2]})", 0},
      {R"({"a":{"dtype":"F32","shape":[1e99999],"data_offsets":[0,4]}})", 4},  // number overflow
      {R"([1,2])", 0},
      {R"({"a":{"dtype":"F32")", 0},
      {R"({"a":{"dtype":"F32","shape":[[[[[[1]]]]]],"data_offsets":[0,4]}})", 4},
  };
  for (const auto& c : cases) {
    auto r = read_safetensors(make_file(c.header, c.data));
    EXPECT_FALSE(r.ok()) << c.header;
  }
}

// A bool tensor whose byte is neither 0 nor 1 is refused.
TEST(SafetensorsTest, RejectsBoolBytesOtherThanZeroOrOne) {
  auto f = make_file(R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", 1);
  EXPECT_TRUE(read_safetensors(f).ok());
  f.back() = 2;
  EXPECT_FALSE(read_safetensors(f).ok());
}

// A claimed header length over the cap, or past the end of the file, fails before parsing.
TEST(SafetensorsTest, RejectsHugeClaimedHeaderLength) {
  std::vector<uint8_t> f = {0, 0, 0, 0, 0, 0, 0, 0x01, '{', '}'};
  EXPECT_NE(read_safetensors(f).status().message().find("exceeds the limit"), std::string::npos);
  std::vector<uint8_t> g = {0xff, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
  EXPECT_NE(read_safetensors(g).status().message().find("truncated"), std::string::npos);
}

// Overwriting each header byte with structural characters never crashes the reader.
TEST(SafetensorsTest, SurvivesCorruptionOfEveryHeaderByte) {
  auto bytes = write_safetensors(three_tensor_bundle()).value_or_die();
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  int accepted = 0;
  for (size_t i = 0; i < 8 + n; ++i) {
    for (uint8_t v : {0x00, 0x22, 0x2c, 0x30, 0x39, 0x5b, 0x5d, 0x7b, 0x7d, 0xff}) {
      auto copy = bytes;
      copy[i] = v;
      accepted += read_safetensors(copy).ok();
    }
  }
  EXPECT_LT(accepted, static_cast<int>(8 + n) * 10);
}

}  // namespace
}  // namespace moss
