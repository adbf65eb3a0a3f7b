// BufferPool (runtime/buffer_pool.h): released buffers come back for values of the same type and
// shape, zeroed; buffers in use are never handed out; idle memory is trimmed.
#include "engine/runtime/buffer_pool.h"

#include <gtest/gtest.h>

namespace moss::engine {
namespace {

TEST(EngineBufferPool, ReusesAReleasedBufferOfTheSameTypeAndShapeZeroed) {
  BufferPool pool;
  const std::vector<int64_t> shape{2, 3};
  auto a = pool.acquire(DType::kFloat32, shape).value_or_die();
  a->data<float>()[4] = 7.0f;
  const Tensor* first = a.get();
  a.reset();  // released
  auto b = pool.acquire(DType::kFloat32, shape).value_or_die();
  EXPECT_EQ(b.get(), first);
  EXPECT_EQ(b->data<float>()[4], 0.0f);
  EXPECT_EQ(pool.allocations(), 1u);
  // Same element count, other shape or type: a new buffer.
  b.reset();
  auto c = pool.acquire(DType::kFloat32, std::vector<int64_t>{3, 2}).value_or_die();
  auto d = pool.acquire(DType::kInt32, shape).value_or_die();
  EXPECT_NE(c.get(), first);
  EXPECT_EQ(c->shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(d->dtype(), DType::kInt32);
  EXPECT_EQ(pool.allocations(), 3u);
}

TEST(EngineBufferPool, NeverHandsOutABufferInUse) {
  BufferPool pool;
  const std::vector<int64_t> shape{4};
  auto a = pool.acquire(DType::kInt64, shape).value_or_die();
  std::shared_ptr<const Tensor> reader = a;  // e.g. a sequence holding the value
  a.reset();
  auto b = pool.acquire(DType::kInt64, shape).value_or_die();
  EXPECT_NE(b.get(), reader.get());
  EXPECT_EQ(pool.allocations(), 2u);
}

TEST(EngineBufferPool, RefusesInvalidShapes) {
  BufferPool pool;
  EXPECT_FALSE(pool.acquire(DType::kFloat32, std::vector<int64_t>{-1}).ok());
  EXPECT_FALSE(pool.acquire(DType::kFloat32, std::vector<int64_t>{int64_t{1} << 40, 1 << 20}).ok());
}

TEST(EngineBufferPool, TrimsIdleBuffersWhenShapesKeepChanging) {
  // A growing loop value: every shape is new. Past 64 MiB held, idle buffers are dropped down to
  // the bytes in use, and the next trim comes at twice what was kept: the pool holds a small
  // multiple of what is in use.
  BufferPool pool;
  std::shared_ptr<Tensor> live;
  for (int64_t i = 1; i <= 40; ++i) {
    live = pool.acquire(DType::kUInt8, std::vector<int64_t>{i << 20}).value_or_die();  // i MiB
  }
  EXPECT_EQ(pool.allocations(), 40u);
  // While the 40 MiB value is made the 39 MiB one is still in use (as a loop's carried value).
  EXPECT_LE(pool.held_bytes(), size_t{3} * (size_t{39 + 40} << 20));
  EXPECT_LT(pool.held_bytes(), size_t{820} << 20);  // 1 + 2 + ... + 40 MiB without trimming
}

}  // namespace
}  // namespace moss::engine
