#include "common/npy.h"

#include "common/file_util.h"
#include "common/tensor_file.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

namespace moss {
namespace {

namespace fs = std::filesystem;

fs::path fixture(const std::string& name) {
  const char* root = std::getenv("MOSS_SOURCE_DIR");
  fs::path base = root ? fs::path(root) / "tests" : fs::path(__FILE__).parent_path() / "../..";
  return base / "data/common" / name;
}

// Builds a version-1 (or 2/3) .npy file around a given header text and data.
std::vector<uint8_t> make_npy(std::string header, std::vector<uint8_t> data = {}, int version = 1) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(version), 0};
  const size_t n = header.size();
  out.push_back(static_cast<uint8_t>(n));
  out.push_back(static_cast<uint8_t>(n >> 8));
  if (version > 1) {
    out.push_back(static_cast<uint8_t>(n >> 16));
    out.push_back(static_cast<uint8_t>(n >> 24));
  }
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Tensor patterned(DType dtype, std::vector<int64_t> shape) {
  Tensor t = Tensor::zeros(dtype, std::move(shape)).value_or_die();
  for (size_t i = 0; i < t.nbytes(); ++i) {
    t.bytes()[i] = dtype == DType::kBool ? static_cast<uint8_t>(i % 2) : static_cast<uint8_t>(i * 7 + 3);
  }
  return t;
}

// Every dtype NumPy can describe survives write then read unchanged.
TEST(NpyTest, RoundTripsEveryDtype) {
  for (int i = 0; i <= static_cast<int>(DType::kBool); ++i) {
    auto dtype = static_cast<DType>(i);
    if (dtype == DType::kBFloat16) continue;
    Tensor t = patterned(dtype, {2, 3, 4});
    auto bytes = write_npy(t);
    ASSERT_TRUE(bytes.ok()) << dtype_name(dtype);
    auto back = read_npy(*bytes);
    ASSERT_TRUE(back.ok()) << dtype_name(dtype) << ": " << back.status().to_string();
    EXPECT_TRUE(back->equals(t)) << dtype_name(dtype);
  }
}

// 0-d scalars, 1-d vectors and tensors with a zero dimension round-trip with their exact shape.
TEST(NpyTest, RoundTripsScalarsVectorsAndEmptyTensors) {
  for (std::vector<int64_t> shape : {std::vector<int64_t>{}, {5}, {0}, {3, 0, 2}, {1, 1, 1, 1}}) {
    Tensor t = patterned(DType::kInt32, shape);
    auto back = read_npy(write_npy(t).value_or_die());
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->shape(), shape);
    EXPECT_TRUE(back->equals(t));
  }
}

// Our writer produces byte-for-byte what numpy.save writes (header text, padding, data).
TEST(NpyTest, WriterMatchesNumpyByteForByte) {
  auto expected = read_file(fixture("c_f4_2x3.npy"), 1 << 20);
  ASSERT_TRUE(expected.ok()) << expected.status().to_string();
  auto t = Tensor::from_vector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(write_npy(t).value_or_die(), *expected);
}

// Files written by numpy itself, in every layout we accept, read as the same row-major values.
TEST(NpyTest, ReadsNumpyWrittenFiles) {
  const auto f32 = Tensor::from_vector<float>({2, 3}, {0, 1, 2, 3, 4, 5});
  EXPECT_TRUE(read_npy_file(fixture("c_f4_2x3.npy"))->equals(f32));
  EXPECT_TRUE(read_npy_file(fixture("fortran_f4_2x3.npy"))->equals(f32));
  EXPECT_TRUE(read_npy_file(fixture("bigendian_i4_2x3.npy"))
                  ->equals(Tensor::from_vector<int32_t>({2, 3}, {0, 1, 2, 3, 4, 5})));
  EXPECT_TRUE(read_npy_file(fixture("v2_f8_2x3.npy"))
                  ->equals(Tensor::from_vector<double>({2, 3}, {0, 1, 2, 3, 4, 5})));
  EXPECT_TRUE(read_npy_file(fixture("v3_u2_2x3.npy"))
                  ->equals(Tensor::from_vector<uint16_t>({2, 3}, {0, 1, 2, 3, 4, 5})));
  EXPECT_TRUE(read_npy_file(fixture("bool_3.npy"))
                  ->equals(Tensor::from_vector<bool>({3}, {true, false, true})));
  EXPECT_TRUE(read_npy_file(fixture("scalar_i8.npy"))->equals(Tensor::from_vector<int64_t>({}, {-7})));
  auto empty = read_npy_file(fixture("empty_f2_0x3.npy"));
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->dtype(), DType::kFloat16);
  EXPECT_EQ(empty->shape(), (std::vector<int64_t>{0, 3}));
}

// A 3-d Fortran-ordered array is transposed into row-major order element by element.
TEST(NpyTest, TransposesThreeDimensionalFortranArrays) {
  auto t = read_npy_file(fixture("fortran_i2_2x3x4.npy"));
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  ASSERT_EQ(t->shape(), (std::vector<int64_t>{2, 3, 4}));
  for (int16_t i = 0; i < 24; ++i) EXPECT_EQ(t->data<int16_t>()[i], i);
}

// The file reader and the buffer reader agree, and the file writer's output reads back.
TEST(NpyTest, FileWriteThenReadRoundTrips) {
  fs::path dir = fs::temp_directory_path() / ("moss_npy_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Tensor t = patterned(DType::kUInt64, {4, 2});
  ASSERT_TRUE(write_npy_file(dir / "t.npy", t).ok());
  auto back = read_npy_file(dir / "t.npy");
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_TRUE(back->equals(t));
  EXPECT_EQ(read_npy_file(dir / "missing.npy").status().code(), ErrorCode::kNotFound);
  fs::remove_all(dir);
}

// read_tensor_file recognises .npy by content and falls back to TensorProto for anything else.
TEST(NpyTest, ReadTensorFileRecognisesNpyAndTensorProto) {
  auto n = read_tensor_file(fixture("c_f4_2x3.npy"));
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(n->shape(), (std::vector<int64_t>{2, 3}));
  const fs::path pb = "/usr/share/libonnx-testdata/data/node/test_abs/test_data_set_0/input_0.pb";
  if (fs::exists(pb)) {
    auto p = read_tensor_file(pb);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    EXPECT_EQ(p->shape(), (std::vector<int64_t>{3, 4, 5}));
  }
  EXPECT_FALSE(read_tensor_file(fixture("make_fixtures.py")).ok());
  EXPECT_EQ(read_tensor_file(fixture("missing.npy")).status().code(), ErrorCode::kNotFound);
}

// bfloat16 has no NumPy dtype, so writing it fails instead of silently changing the type.
TEST(NpyTest, RefusesToWriteBFloat16) {
  Tensor t = Tensor::zeros(DType::kBFloat16, {2}).value_or_die();
  EXPECT_EQ(write_npy(t).status().code(), ErrorCode::kUnimplemented);
}

// Every strict prefix of a valid file, and the file with a byte appended, is an error.
TEST(NpyTest, RejectsEveryTruncationAndTrailingBytes) {
  auto bytes = write_npy(patterned(DType::kFloat32, {2, 2})).value_or_die();
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(read_npy({bytes.data(), n}).ok()) << "prefix " << n;
  }
  bytes.push_back(0);
  EXPECT_FALSE(read_npy(bytes).ok());
}

// Headers that are malformed, ambiguous or describe unsupported data are all refused.
TEST(NpyTest, RejectsMalformedHeaders) {
  const std::vector<uint8_t> four(4, 0);
  const char* bad[] = {
      "{'descr': '<f4', 'fortran_order': False}\n",                       // no shape
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}\n",  // unknown key
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n",  // repeated
      "{'descr': '<c8', 'fortran_order': False, 'shape': (1,)}\n",        // complex
      "{'descr': '|O', 'fortran_order': False, 'shape': (1,)}\n",         // pickled objects
      "{'descr': '<f3', 'fortran_order': False, 'shape': (1,)}\n",
      "{'descr': '|f4', 'fortran_order': False, 'shape': (1,)}\n",        // no byte order
      "{'descr': '=f4', 'fortran_order': False, 'shape': (1,)}\n",
      "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}\n",  // structured
      "{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}\n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1)}\n",         // not a tuple
      "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x\n",    // trailing text
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",        // no newline
      "{'descr': '<f\\4', 'fortran_order': False, 'shape': (1,)}\n",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n",
      "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}\n",
      "",
  };
  for (const char* h : bad) {
    auto r = read_npy(make_npy(h, four));
    EXPECT_FALSE(r.ok()) << h;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << h;
  }
}

// A shape whose byte size overflows or exceeds the tensor cap fails before any allocation.
TEST(NpyTest, RejectsAbsurdShapes) {
  auto r = read_npy(make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n"));
  EXPECT_EQ(r.status().code(), ErrorCode::kResourceExhausted);
  // Within the cap but far larger than the data present: refused before allocating 15 GiB.
  auto big = read_npy(make_npy("{'descr': '|u1', 'fortran_order': False, 'shape': (16000000000,), }\n", {1, 2}));
  EXPECT_NE(big.status().message().find("data length does not match"), std::string::npos)
      << big.status().to_string();
  std::string rank17 = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  for (int i = 0; i < 17; ++i) rank17 += "1, ";
  EXPECT_FALSE(read_npy(make_npy(rank17 + "), }\n", {0, 0, 0, 0})).ok());
}

// Bad magic, unknown versions and an over-long header length are refused up front.
TEST(NpyTest, RejectsBadMagicVersionAndHeaderLength) {
  const std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n";
  auto bytes = make_npy(h, {0, 0, 0, 0});
  auto bad_magic = bytes;
  bad_magic[1] = 'X';
  EXPECT_FALSE(read_npy(bad_magic).ok());
  auto bad_version = bytes;
  bad_version[6] = 4;
  EXPECT_FALSE(read_npy(bad_version).ok());
  auto v2 = make_npy(h, {0, 0, 0, 0}, 2);
  EXPECT_TRUE(read_npy(v2).ok());
  v2[10] = 0x10;  // header length 1 MiB + ..., over the cap
  EXPECT_NE(read_npy(v2).status().message().find("exceeds the limit"), std::string::npos);
}

// A bool array may only hold 0 and 1; any other byte would make comparisons ambiguous.
TEST(NpyTest, RejectsBoolBytesOtherThanZeroOrOne) {
  auto r = read_npy(make_npy("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }\n", {1, 2}));
  EXPECT_FALSE(r.ok());
}

// Overwriting each header byte with every interesting value never crashes the reader.
TEST(NpyTest, SurvivesCorruptionOfEveryHeaderByte) {
  auto bytes = write_npy(patterned(DType::kInt16, {3, 2})).value_or_die();
  int accepted = 0;
  for (size_t i = 0; i < bytes.size() - 12; ++i) {
    for (uint8_t v : {0x00, 0x0a, 0x20, 0x27, 0x28, 0x29, 0x2c, 0x30, 0x39, 0x7b, 0x7d, 0xff}) {
      auto copy = bytes;
      copy[i] = v;
      accepted += read_npy(copy).ok();
    }
  }
  EXPECT_LT(accepted, static_cast<int>(bytes.size()) * 12);
}

}  // namespace
}  // namespace moss
