// OnednnSoftmax and OnednnLayerNorm against reference loops (BERT's attention and normalization).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/kernels/onednn/onednn_ops.h"
#include "reference_ops.h"

namespace moss::engine::onednn {
namespace {

using testing::count;
using testing::expect_close;
using testing::random_floats;

// Splits dims at axis into (outer, n, inner) for axis-wise reference loops.
void split(const Dims& dims, int64_t axis, int64_t& outer, int64_t& n, int64_t& inner) {
  outer = inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= dims[i];
  n = dims[axis];
  for (size_t i = axis + 1; i < dims.size(); ++i) inner *= dims[i];
}

TEST(OnednnSoftmaxTest, MatchesReferenceOnEveryAxisAndLogVariant) {
  // Softmax and LogSoftmax over the last, middle and first axis of a [3,5,7] tensor.
  const Dims dims = {3, 5, 7};
  auto x = random_floats(count(dims), 90, -4.f, 4.f);
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  for (bool log : {false, true}) {
    for (int64_t axis : {-1, 1, 0}) {
      SCOPED_TRACE(::testing::Message() << "log " << log << " axis " << axis);
      SoftmaxParams p{dims, axis, log, {}};
      auto k = OnednnSoftmax::create(p).value_or_die();
      std::vector<float> y(x.size()), want(x.size());
      ASSERT_TRUE(k->execute(x.data(), y.data(), scratch).ok());
      int64_t outer, n, inner;
      split(dims, axis < 0 ? axis + 3 : axis, outer, n, inner);
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          auto at = [&](int64_t j) { return static_cast<size_t>((o * n + j) * inner + i); };
          double mx = -1e30, sum = 0;
          for (int64_t j = 0; j < n; ++j) mx = std::max(mx, double(x[at(j)]));
          for (int64_t j = 0; j < n; ++j) sum += std::exp(double(x[at(j)]) - mx);
          for (int64_t j = 0; j < n; ++j) {
            const double v = double(x[at(j)]) - mx;
            want[at(j)] = float(log ? v - std::log(sum) : std::exp(v) / sum);
          }
        }
      expect_close(y, want, 1e-5);
    }
  }
  EXPECT_EQ(OnednnSoftmax::create({dims, 3, false, {}}).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(OnednnLayerNormTest, MatchesReferenceWithAndWithoutBias) {
  // LayerNormalization over the last axis ([1,128,256], BERT) and the last two axes, with and
  // without bias.
  OnednnScratch scratch = OnednnScratch::create().value_or_die();
  struct Case {
    Dims dims;
    int64_t axis;
    bool bias;
  };
  for (const Case& c :
       {Case{{1, 128, 256}, -1, true}, Case{{2, 3, 4, 5}, 2, true}, Case{{4, 16}, 1, false}}) {
    SCOPED_TRACE(c.dims.size());
    int64_t outer, n, inner;
    const int64_t axis = c.axis < 0 ? c.axis + static_cast<int64_t>(c.dims.size()) : c.axis;
    split(c.dims, axis, outer, n, inner);
    const int64_t cols = n * inner;
    auto x = random_floats(count(c.dims), 91, -3.f, 5.f);
    auto sc = random_floats(cols, 92), bi = random_floats(cols, 93);
    LayerNormParams p{c.dims, c.axis, 1e-5f, c.bias, {}};
    auto k = OnednnLayerNorm::create(p, sc.data(), c.bias ? bi.data() : nullptr).value_or_die();
    std::vector<float> y(x.size()), want(x.size());
    ASSERT_TRUE(k->execute(x.data(), y.data(), scratch).ok());
    for (int64_t r = 0; r < outer; ++r) {
      double mean = 0, var = 0;
      for (int64_t j = 0; j < cols; ++j) mean += x[r * cols + j];
      mean /= cols;
      for (int64_t j = 0; j < cols; ++j) var += (x[r * cols + j] - mean) * (x[r * cols + j] - mean);
      var /= cols;
      for (int64_t j = 0; j < cols; ++j) {
        want[r * cols + j] = float((x[r * cols + j] - mean) / std::sqrt(var + 1e-5) * sc[j] +
                                   (c.bias ? bi[j] : 0.f));
      }
    }
    expect_close(y, want, 1e-4);
  }
}

}  // namespace
}  // namespace moss::engine::onednn
