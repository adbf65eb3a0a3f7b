#include "common/tensor_proto.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

namespace moss {
namespace {

namespace fs = std::filesystem;
const fs::path kTestData = "/usr/share/libonnx-testdata/data";

// A minimal protobuf wire-format writer, so tests can build exactly the TensorProto bytes they
// need (including invalid ones) without depending on the generated ONNX classes.
class ProtoWriter {
 public:
  ProtoWriter& varint_field(int field, uint64_t v) {
    varint(static_cast<uint64_t>(field) << 3);
    varint(v);
    return *this;
  }
  ProtoWriter& bytes_field(int field, const std::string& payload) {
    varint((static_cast<uint64_t>(field) << 3) | 2);
    varint(payload.size());
    out_ += payload;
    return *this;
  }
  ProtoWriter& dims(std::initializer_list<int64_t> ds) {
    for (int64_t d : ds) varint_field(1, static_cast<uint64_t>(d));
    return *this;
  }
  template <typename T>
  ProtoWriter& packed_fixed(int field, std::initializer_list<T> values) {
    std::string p;
    for (T v : values) p.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return bytes_field(field, p);
  }
  ProtoWriter& packed_varint(int field, std::initializer_list<int64_t> values) {
    ProtoWriter inner;
    for (int64_t v : values) inner.varint(static_cast<uint64_t>(v));
    return bytes_field(field, inner.out_);
  }
  std::vector<uint8_t> bytes() const { return {out_.begin(), out_.end()}; }

 private:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

// TensorProto field numbers and data types from onnx.proto.
enum : int { kDims = 1, kDataType = 2, kSegment = 3, kFloatData = 4, kInt32Data = 5,
             kStringData = 6, kInt64Data = 7, kName = 8, kRawData = 9, kDoubleData = 10,
             kUInt64Data = 11, kExternalData = 13, kDataLocation = 14 };
enum : int { kFLOAT = 1, kUINT8 = 2, kINT8 = 3, kUINT16 = 4, kINT16 = 5, kINT32 = 6, kINT64 = 7,
             kSTRING = 8, kBOOL = 9, kFLOAT16 = 10, kDOUBLE = 11, kUINT32 = 12, kUINT64 = 13,
             kCOMPLEX64 = 14, kBFLOAT16 = 16 };

// A real conformance input and output read back with name, type, shape, and values that agree
// with the operator (Abs), so every element was decoded correctly.
TEST(TensorProtoTest, ReadsRealConformanceFiles) {
  const fs::path dir = kTestData / "node/test_abs/test_data_set_0";
  if (!fs::exists(dir)) GTEST_SKIP() << "libonnx-testdata is not installed";
  auto x = read_tensor_proto_file(dir / "input_0.pb");
  auto y = read_tensor_proto_file(dir / "output_0.pb");
  ASSERT_TRUE(x.ok()) << x.status().to_string();
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  EXPECT_EQ(x->name, "x");
  EXPECT_EQ(x->tensor.dtype(), DType::kFloat32);
  EXPECT_EQ(x->tensor.shape(), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_FLOAT_EQ(x->tensor.data<float>()[0], 1.7640524f);
  for (int64_t i = 0; i < x->tensor.numel(); ++i) {
    EXPECT_EQ(y->tensor.data<float>()[i], std::fabs(x->tensor.data<float>()[i]));
  }
  auto b = read_tensor_proto_file(kTestData / "node/test_and2d/test_data_set_0/input_0.pb");
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(b->tensor.dtype(), DType::kBool);
  auto h = read_tensor_proto_file(kTestData / "node/test_cast_FLOAT_to_FLOAT16/test_data_set_0/output_0.pb");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->tensor.dtype(), DType::kFloat16);
}

// Every .pb of the node conformance suite either reads or is refused as unimplemented (strings),
// never crashes and never fails as "malformed".
TEST(TensorProtoTest, EveryNodeConformanceFileReadsOrIsClearlyUnsupported) {
  if (!fs::exists(kTestData / "node")) GTEST_SKIP() << "libonnx-testdata is not installed";
  int read = 0, unsupported = 0;
  for (const auto& e : fs::recursive_directory_iterator(kTestData / "node")) {
    if (e.path().extension() != ".pb") continue;
    auto t = read_tensor_proto_file(e.path());
    if (t.ok()) {
      ++read;
    } else if (t.status().code() == ErrorCode::kUnimplemented) {
      ++unsupported;
    } else {
      // Sequence and optional test data are other message types; read as tensors they make
      // nonsense, which must be refused as such (bad fields or absurd dims).
      EXPECT_TRUE(t.status().code() == ErrorCode::kInvalidArgument ||
                  t.status().code() == ErrorCode::kResourceExhausted)
          << e.path() << ": " << t.status().to_string();
    }
  }
  EXPECT_GT(read, 1000);
  EXPECT_GT(unsupported, 0);
}

// String tensors are refused with a message that says they are unsupported.
TEST(TensorProtoTest, RefusesStringTensorsClearly) {
  auto bytes = ProtoWriter().dims({1}).varint_field(kDataType, kSTRING).bytes_field(kStringData, "hi").bytes();
  auto r = read_tensor_proto(bytes);
  EXPECT_EQ(r.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("string tensors are not supported"), std::string::npos);
  auto c = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kCOMPLEX64).bytes_field(kRawData, "abcdefgh").bytes());
  EXPECT_EQ(c.status().message(), "TensorProto: complex64 tensors are not supported");
}

// Tensors whose data lives in an external file are refused (decrypted models never touch disk).
TEST(TensorProtoTest, RefusesExternalData) {
  auto bytes = ProtoWriter().dims({1}).varint_field(kDataType, kFLOAT).varint_field(kDataLocation, 1).bytes();
  auto r = read_tensor_proto(bytes);
  EXPECT_EQ(r.status().code(), ErrorCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("external data"), std::string::npos);
}

// Each typed field decodes into the right dtype and values.
TEST(TensorProtoTest, DecodesTypedFields) {
  auto f = read_tensor_proto(ProtoWriter().dims({2}).varint_field(kDataType, kFLOAT)
                                 .packed_fixed<float>(kFloatData, {1.5f, -2.0f}).bytes_field(kName, "w").bytes());
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->name, "w");
  EXPECT_TRUE(f->tensor.equals(Tensor::from_vector<float>({2}, {1.5f, -2.0f})));

  auto d = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kDOUBLE)
                                 .packed_fixed<double>(kDoubleData, {0.25}).bytes());
  EXPECT_TRUE(d->tensor.equals(Tensor::from_vector<double>({1}, {0.25})));

  auto i64 = read_tensor_proto(ProtoWriter().dims({3}).varint_field(kDataType, kINT64)
                                   .packed_varint(kInt64Data, {-1, 0, 1LL << 40}).bytes());
  EXPECT_TRUE(i64->tensor.equals(Tensor::from_vector<int64_t>({3}, {-1, 0, 1LL << 40})));

  auto u64 = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kUINT64)
                                   .packed_varint(kUInt64Data, {-1}).bytes());
  EXPECT_TRUE(u64->tensor.equals(Tensor::from_vector<uint64_t>({1}, {UINT64_MAX})));

  auto u32 = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kUINT32)
                                   .packed_varint(kUInt64Data, {4000000000}).bytes());
  EXPECT_TRUE(u32->tensor.equals(Tensor::from_vector<uint32_t>({1}, {4000000000u})));
}

// int32_data carries int32 and every narrower type, each range-checked.
TEST(TensorProtoTest, DecodesNarrowTypesFromInt32Data) {
  auto i8 = read_tensor_proto(ProtoWriter().dims({2}).varint_field(kDataType, kINT8)
                                  .packed_varint(kInt32Data, {-128, 127}).bytes());
  EXPECT_TRUE(i8->tensor.equals(Tensor::from_vector<int8_t>({2}, {-128, 127})));
  auto u8 = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kUINT8).packed_varint(kInt32Data, {255}).bytes());
  EXPECT_TRUE(u8->tensor.equals(Tensor::from_vector<uint8_t>({1}, {255})));
  auto i16 = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kINT16).packed_varint(kInt32Data, {-300}).bytes());
  EXPECT_TRUE(i16->tensor.equals(Tensor::from_vector<int16_t>({1}, {-300})));
  auto u16 = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kUINT16).packed_varint(kInt32Data, {65535}).bytes());
  EXPECT_TRUE(u16->tensor.equals(Tensor::from_vector<uint16_t>({1}, {65535})));
  auto i32 = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kINT32).packed_varint(kInt32Data, {-5}).bytes());
  EXPECT_TRUE(i32->tensor.equals(Tensor::from_vector<int32_t>({1}, {-5})));
  auto b = read_tensor_proto(ProtoWriter().dims({2}).varint_field(kDataType, kBOOL).packed_varint(kInt32Data, {1, 0}).bytes());
  EXPECT_TRUE(b->tensor.equals(Tensor::from_vector<bool>({2}, {true, false})));
  // float16 1.0 is 0x3C00; bfloat16 1.0 is 0x3F80: stored as bit patterns.
  auto h = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kFLOAT16).packed_varint(kInt32Data, {0x3C00}).bytes());
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->tensor.dtype(), DType::kFloat16);
  EXPECT_EQ(h->tensor.raw()[1], 0x3C);
  auto bf = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kBFLOAT16).packed_varint(kInt32Data, {0x3F80}).bytes());
  ASSERT_TRUE(bf.ok());
  EXPECT_EQ(bf->tensor.dtype(), DType::kBFloat16);
  EXPECT_EQ(bf->tensor.raw()[1], 0x3F);

  for (auto [type, value] : {std::pair{kINT8, 128}, {kUINT8, -1}, {kBOOL, 2}, {kINT16, 40000}, {kFLOAT16, 70000}}) {
    auto r = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, static_cast<uint64_t>(type))
                                   .packed_varint(kInt32Data, {value}).bytes());
    EXPECT_FALSE(r.ok()) << type << " " << value;
  }
  auto u32 = read_tensor_proto(ProtoWriter().dims({1}).varint_field(kDataType, kUINT32).packed_varint(kUInt64Data, {1LL << 32}).bytes());
  EXPECT_FALSE(u32.ok());
}

// raw_data is taken as little-endian bytes, and its length must match the dims exactly.
TEST(TensorProtoTest, DecodesRawDataAndChecksItsLength) {
  std::string raw(8, '\0');
  raw[0] = 7;
  auto ok = read_tensor_proto(ProtoWriter().dims({2}).varint_field(kDataType, kINT32).bytes_field(kRawData, raw).bytes());
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->tensor.data<int32_t>()[0], 7);
  EXPECT_FALSE(read_tensor_proto(ProtoWriter().dims({3}).varint_field(kDataType, kINT32).bytes_field(kRawData, raw).bytes()).ok());
  EXPECT_FALSE(read_tensor_proto(ProtoWriter().dims({2, 3}).varint_field(kDataType, kINT32).bytes_field(kRawData, raw).bytes()).ok());
  auto scalar = read_tensor_proto(ProtoWriter().varint_field(kDataType, kINT64).bytes_field(kRawData, raw).bytes());
  ASSERT_TRUE(scalar.ok());
  EXPECT_TRUE(scalar->tensor.shape().empty());
  auto empty = read_tensor_proto(ProtoWriter().dims({0, 4}).varint_field(kDataType, kFLOAT).bytes());
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_EQ(empty->tensor.numel(), 0);
}

// Inconsistent protos are rejected: wrong counts, wrong fields, missing data, bad types and shapes.
TEST(TensorProtoTest, RejectsInconsistentProtos) {
  const std::vector<std::vector<uint8_t>> bad = {
      ProtoWriter().dims({3}).varint_field(kDataType, kFLOAT).packed_fixed<float>(kFloatData, {1, 2}).bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, kFLOAT).packed_varint(kInt64Data, {1}).bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, kFLOAT).bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, kFLOAT).bytes_field(kRawData, "abcd").packed_fixed<float>(kFloatData, {1}).bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, kCOMPLEX64).bytes_field(kRawData, "abcdefgh").bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, 0).bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, 99).bytes(),
      ProtoWriter().dims({-1}).varint_field(kDataType, kFLOAT).bytes(),
      ProtoWriter().dims({1LL << 40, 1LL << 40}).varint_field(kDataType, kFLOAT).bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, kBOOL).bytes_field(kRawData, "\x02").bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, kFLOAT).bytes_field(kSegment, "").bytes_field(kRawData, "abcd").bytes(),
      ProtoWriter().dims({1}).varint_field(kDataType, kFLOAT).bytes_field(kExternalData, "").bytes(),
      {0x0a, 0xff},  // truncated length-delimited field
      {0xff, 0xff, 0xff},
  };
  for (size_t i = 0; i < bad.size(); ++i) EXPECT_FALSE(read_tensor_proto(bad[i]).ok()) << "case " << i;
}

// Dims within the size cap but with no data to match are refused before allocating.
TEST(TensorProtoTest, RefusesHugeDimsWithoutAllocating) {
  auto r = read_tensor_proto(ProtoWriter().dims({16000000000}).varint_field(kDataType, kUINT8).bytes_field(kRawData, "ab").bytes());
  EXPECT_NE(r.status().message().find("raw_data has 2 bytes"), std::string::npos) << r.status().to_string();
  auto s = read_tensor_proto(ProtoWriter().dims({4000000000}).varint_field(kDataType, kFLOAT).packed_fixed<float>(kFloatData, {1}).bytes());
  EXPECT_NE(s.status().message().find("float_data holds 1 values"), std::string::npos) << s.status().to_string();
}

// Every prefix of a valid serialized tensor either fails or decodes to a consistent tensor.
TEST(TensorProtoTest, TruncationsNeverCrash) {
  auto bytes = ProtoWriter().dims({2, 2}).varint_field(kDataType, kFLOAT)
                   .packed_fixed<float>(kFloatData, {1, 2, 3, 4}).bytes_field(kName, "t").bytes();
  int ok = 0;
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = read_tensor_proto({bytes.data(), n});
    if (!r.ok()) continue;
    ++ok;
    EXPECT_EQ(static_cast<size_t>(r->tensor.numel()) * 4, r->tensor.nbytes());
  }
  EXPECT_LT(ok, static_cast<int>(bytes.size()));
}

}  // namespace
}  // namespace moss
