// One immutable kernel object shared by many threads, each with its own scratch: results are
// bit-identical to a serial run, run after run.
#include <gtest/gtest.h>

#include <thread>

#include "engine/kernels/onednn/onednn_common.h"
#include "engine/kernels/onednn/onednn_ops.h"
#include "reference_ops.h"

namespace moss::engine::onednn {
namespace {

using testing::count;
using testing::random_floats;

struct Fixture {
  std::unique_ptr<const OnednnConv> conv;
  std::unique_ptr<const OnednnMatmul> mm;
  std::vector<float> x, a;
  size_t conv_out = 0, mm_out = 0;
};

Fixture make_fixture(int threads) {
  Fixture f;
  ConvParams p;
  p.src_dims = {1, 64, 28, 28};
  p.weight_dims = {64, 64, 3, 3};
  p.pads_begin = {1, 1};
  p.pads_end = {1, 1};
  p.has_bias = true;
  p.src = LayoutChoice::any();
  p.dst = LayoutChoice::any();
  p.options.post_ops = {{PostOp::Kind::kRelu}};
  p.options.threads = threads;
  auto w = random_floats(count(p.weight_dims), 1), b = random_floats(64, 2);
  f.conv = OnednnConv::create(p, w.data(), b.data()).value_or_die();
  f.x = random_floats(static_cast<int64_t>(f.conv->src_layout().bytes() / 4), 3);
  f.conv_out = f.conv->dst_layout().bytes() / 4;
  MatmulParams q;
  q.a_dims = {1, 128, 256};
  q.b_dims = {256, 256};
  q.bias_dims = {256};
  q.options.post_ops = {{PostOp::Kind::kGeluErf}};
  q.options.threads = threads;
  auto bw = random_floats(256 * 256, 4), bb = random_floats(256, 5);
  f.mm = OnednnMatmul::create(q, bw.data(), bb.data()).value_or_die();
  f.a = random_floats(128 * 256, 6);
  f.mm_out = 128 * 256;
  return f;
}

void run(const Fixture& f, OnednnScratch& s, std::vector<float>& y, std::vector<float>& z) {
  y.assign(f.conv_out, 0.f);
  z.assign(f.mm_out, 0.f);
  ASSERT_TRUE(f.conv->execute(f.x.data(), y.data(), nullptr, s).ok());
  ASSERT_TRUE(f.mm->execute(f.a.data(), nullptr, z.data(), nullptr, s).ok());
}

TEST(OnednnConcurrencyTest, RepeatedRunsAreBitIdentical) {
  // The same inputs through the same kernels give the same bits every time.
  for (int threads : {1, 2}) {
    Fixture f = make_fixture(threads);
    OnednnScratch s = OnednnScratch::create().value_or_die();
    s.reserve(std::max(f.conv->scratchpad_bytes(), f.mm->scratchpad_bytes()));
    std::vector<float> y0, z0, y, z;
    run(f, s, y0, z0);
    for (int i = 0; i < 5; ++i) {
      run(f, s, y, z);
      ASSERT_EQ(y, y0);
      ASSERT_EQ(z, z0);
    }
  }
}

TEST(OnednnConcurrencyTest, EightThreadsSharingKernelsMatchSerial) {
  // 8 threads x 10 runs on one shared conv and matmul, each thread with its own scratch, all equal
  // the serial result bit for bit.
  Fixture f = make_fixture(2);
  OnednnScratch s = OnednnScratch::create().value_or_die();
  std::vector<float> y0, z0;
  run(f, s, y0, z0);
  std::vector<int> mismatches(8, 0), failures(8, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < 8; ++t) {
    pool.emplace_back([&, t] {
      auto scratch = OnednnScratch::create();
      if (!scratch.ok()) {
        failures[t] = 1;
        return;
      }
      std::vector<float> y(f.conv_out), z(f.mm_out);
      for (int i = 0; i < 10; ++i) {
        if (!f.conv->execute(f.x.data(), y.data(), nullptr, *scratch).ok() ||
            !f.mm->execute(f.a.data(), nullptr, z.data(), nullptr, *scratch).ok()) {
          ++failures[t];
        }
        if (y != y0 || z != z0) ++mismatches[t];
      }
    });
  }
  for (auto& th : pool) th.join();
  for (int t = 0; t < 8; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t;
    EXPECT_EQ(mismatches[t], 0) << "thread " << t;
  }
}

}  // namespace
}  // namespace moss::engine::onednn

namespace moss::engine::onednn {
namespace {

TEST(OnednnThreadsTest, ThreadScopeSetsAndRestoresOpenMpTeamSize) {
  // The weak OpenMP references resolve to libgomp (loaded by libdnnl), so a kernel's thread count
  // really reaches OpenMP, and the caller's setting comes back afterwards.
  const int before = resolve_threads(0);
  ASSERT_GE(before, 1);
  {
    ThreadScope scope(before + 2);
    EXPECT_EQ(resolve_threads(0), before + 2);
  }
  EXPECT_EQ(resolve_threads(0), before);
  EXPECT_EQ(resolve_threads(3), 3);
}

}  // namespace
}  // namespace moss::engine::onednn
