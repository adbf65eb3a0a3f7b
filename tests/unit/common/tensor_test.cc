#include "common/tensor.h"

#include <gtest/gtest.h>

namespace moss {
namespace {

TEST(TensorTest, ZerosHasShapeAndSize) {
  auto t = Tensor::zeros(DType::kFloat32, {2, 3}).value_or_die();
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.data<float>()[5], 0.0f);
}

// Untrusted shapes that are negative or overflow the size limit are errors, not allocations.
TEST(TensorTest, RejectsNegativeAndOversizedShapes) {
  EXPECT_EQ(Tensor::zeros(DType::kFloat32, {2, -1}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Tensor::zeros(DType::kFloat32, {1 << 20, 1 << 20, 1 << 20}).status().code(),
            ErrorCode::kResourceExhausted);
  EXPECT_EQ(Tensor::zeros(DType::kInt64, {0, 1 << 30}).value_or_die().numel(), 0);
}

TEST(TensorTest, FromBytesChecksLength) {
  std::vector<uint8_t> four(4, 1);
  EXPECT_FALSE(Tensor::from_bytes(DType::kInt64, {1}, four).ok());
  EXPECT_TRUE(Tensor::from_bytes(DType::kInt32, {1}, four).ok());
}

TEST(TensorTest, DtypeNamesRoundTrip) {
  for (int i = 0; i <= static_cast<int>(DType::kBool); ++i) {
    auto d = static_cast<DType>(i);
    EXPECT_EQ(*dtype_from_name(dtype_name(d)), d);
  }
  EXPECT_FALSE(dtype_from_name("complex64").ok());
}

}  // namespace
}  // namespace moss
