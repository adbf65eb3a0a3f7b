// Whole-network kernel chains: ResNet-50 and MobileNetV2 (batch 1, 224x224, random weights) built
// from the oneDNN kernels alone, run with plain layouts everywhere versus chain mode (blocked
// layouts between kernels, reorders only at the input and before the classifier). It is both the
// upper bound for the engine on these models and a worked example of chain mode for the planner.
//   onednn_chain_bench [--threads 1,2] [--ms 2000]
#include <xmmintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/percentile.h"
#include "engine/kernels/onednn/onednn_ops.h"

namespace onednn = moss::engine::onednn;
using onednn::Dims;
using onednn::Layout;
using onednn::LayoutChoice;
using onednn::PostOp;

namespace {

std::vector<float> random_floats(size_t n, unsigned seed, float scale) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// A sequence of kernel calls over buffers it owns. Tensors are (layout, buffer index).
class Chain {
 public:
  Chain(bool blocked, int threads) : blocked_(blocked), threads_(threads) {}

  struct Tensor {
    Layout layout;
    size_t buf;
  };

  Tensor input(const Dims& dims) {
    Layout l = Layout::plain(dims).value_or_die();
    return {l, alloc(l, 1)};
  }

  // Conv with `act` post-ops; residual (optional) is added before them.
  Tensor conv(const Tensor& x, int64_t cout, int64_t k, int64_t stride, int64_t group,
              std::vector<PostOp> act, const Tensor* residual = nullptr) {
    onednn::ConvParams p;
    p.src_dims = x.layout.dims();
    const int64_t cin = p.src_dims[1];
    p.weight_dims = {cout, cin / group, k, k};
    p.strides = {stride, stride};
    p.pads_begin = p.pads_end = {k / 2, k / 2};
    p.group = group;
    p.has_bias = true;
    if (residual) act.insert(act.begin(), PostOp{PostOp::Kind::kAddResidual});
    p.options.post_ops = act;
    p.options.threads = threads_;
    if (blocked_) {
      p.src = LayoutChoice::exactly(x.layout);
      p.dst = LayoutChoice::any();
      if (residual) p.residual_layout = residual->layout;
    }
    // He-style scale keeps activations O(1) through 50 layers.
    const float scale = std::sqrt(3.f / static_cast<float>(cin / group * k * k));
    auto w = random_floats(static_cast<size_t>(cout * (cin / group) * k * k), seed_++, scale);
    auto b = random_floats(static_cast<size_t>(cout), seed_++, 0.1f);
    auto kern = std::shared_ptr<const onednn::OnednnConv>(
        onednn::OnednnConv::create(p, w.data(), b.data()).value_or_die());
    if (!(kern->src_layout() == x.layout)) std::abort();  // chain invariant
    Tensor y{kern->dst_layout(), alloc(kern->dst_layout(), 0)};
    scratch_bytes_ = std::max(scratch_bytes_, kern->scratchpad_bytes());
    const size_t xi = x.buf, yi = y.buf, ri = residual ? residual->buf : 0;
    const bool has_res = residual != nullptr;
    flops_ += kern->flops();
    steps_.push_back([this, kern, xi, yi, ri, has_res](onednn::OnednnScratch& s) {
      return kern->execute(bufs_[xi].data(), bufs_[yi].data(), has_res ? bufs_[ri].data() : nullptr,
                           s);
    });
    return y;
  }

  Tensor pool(const Tensor& x, onednn::PoolParams::Kind kind, Dims kernel, int64_t stride,
              int64_t pad, bool plain_out) {
    onednn::PoolParams p;
    p.kind = kind;
    p.src_dims = x.layout.dims();
    p.kernel = kernel;
    if (!kernel.empty()) {
      p.strides = {stride, stride};
      p.pads_begin = p.pads_end = {pad, pad};
    }
    p.options.threads = threads_;
    p.src = LayoutChoice::exactly(x.layout);
    p.dst = (blocked_ && !plain_out) ? LayoutChoice::any() : LayoutChoice::plain();
    auto kern =
        std::shared_ptr<const onednn::OnednnPool>(onednn::OnednnPool::create(p).value_or_die());
    Tensor y{kern->dst_layout(), alloc(kern->dst_layout(), 0)};
    scratch_bytes_ = std::max(scratch_bytes_, kern->scratchpad_bytes());
    const size_t xi = x.buf, yi = y.buf;
    steps_.push_back([this, kern, xi, yi](onednn::OnednnScratch& s) {
      return kern->execute(bufs_[xi].data(), bufs_[yi].data(), s);
    });
    return y;
  }

  // Reorders a chain-mode input into what the first conv wants (chain mode's one edge reorder).
  Tensor to_layout(const Tensor& x, const Layout& want) {
    if (x.layout == want) return x;
    auto kern = std::shared_ptr<const onednn::OnednnReorder>(
        onednn::OnednnReorder::create(x.layout, want, threads_).value_or_die());
    Tensor y{want, alloc(want, 0)};
    const size_t xi = x.buf, yi = y.buf;
    steps_.push_back([this, kern, xi, yi](onednn::OnednnScratch& s) {
      return kern->execute(bufs_[xi].data(), bufs_[yi].data(), s);
    });
    return y;
  }

  Tensor fc(const Tensor& x, int64_t n) {
    onednn::MatmulParams p;
    p.a_dims = {1, x.layout.dims()[1]};
    p.b_dims = {p.a_dims[1], n};
    p.bias_dims = {n};
    p.options.threads = threads_;
    auto w = random_floats(static_cast<size_t>(p.a_dims[1] * n), seed_++, 0.05f);
    auto b = random_floats(static_cast<size_t>(n), seed_++, 0.1f);
    auto kern = std::shared_ptr<const onednn::OnednnMatmul>(
        onednn::OnednnMatmul::create(p, w.data(), b.data()).value_or_die());
    Layout l = Layout::plain(Dims{1, n}).value_or_die();
    Tensor y{l, alloc(l, 0)};
    flops_ += kern->flops();
    const size_t xi = x.buf, yi = y.buf;
    steps_.push_back([this, kern, xi, yi](onednn::OnednnScratch& s) {
      return kern->execute(bufs_[xi].data(), nullptr, bufs_[yi].data(), nullptr, s);
    });
    return y;
  }

  // Median ms of a whole forward pass.
  double run(double budget_ms) {
    auto s = onednn::OnednnScratch::create().value_or_die();
    s.reserve(scratch_bytes_);
    auto once = [&] {
      for (auto& step : steps_) {
        if (!step(s).ok()) std::abort();
      }
    };
    for (int i = 0; i < 3; ++i) once();
    std::vector<double> t;
    double total = 0;
    while (t.size() < 5 || (total < budget_ms && t.size() < 500)) {
      auto a = std::chrono::steady_clock::now();
      once();
      t.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
      total += t.back();
    }
    return moss::percentile_in_place(t, 0.5);
  }

  // Per-step median ms over `runs` passes, slowest first (set PROFILE=1).
  void profile(const char* name, int runs) {
    auto s = onednn::OnednnScratch::create().value_or_die();
    s.reserve(scratch_bytes_);
    std::vector<std::vector<double>> t(steps_.size());
    for (int r = 0; r < runs; ++r) {
      for (size_t i = 0; i < steps_.size(); ++i) {
        auto a = std::chrono::steady_clock::now();
        if (!steps_[i](s).ok()) std::abort();
        t[i].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a)
                .count());
      }
    }
    std::vector<std::pair<double, size_t>> med;
    double sum = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      med.push_back({moss::percentile_in_place(t[i], 0.5), i});
      sum += med.back().first;
    }
    std::sort(med.rbegin(), med.rend());
    std::printf("  %s %s: sum of step medians %.2f ms; slowest:", name,
                blocked_ ? "chain" : "plain", sum);
    for (size_t i = 0; i < std::min<size_t>(8, med.size()); ++i) {
      std::printf(" #%zu %.2f", med[i].second, med[i].first);
    }
    std::printf("\n");
  }

  bool blocked() const { return blocked_; }
  double gflop() const { return flops_ / 1e9; }
  size_t steps() const { return steps_.size(); }

 private:
  size_t alloc(const Layout& l, unsigned fill_seed) {
    bufs_.push_back(fill_seed ? random_floats(l.bytes() / 4, fill_seed, 1.f)
                              : std::vector<float>(l.bytes() / 4));
    return bufs_.size() - 1;
  }

  bool blocked_;
  int threads_;
  unsigned seed_ = 100;
  double flops_ = 0;
  size_t scratch_bytes_ = 0;
  std::vector<std::vector<float>> bufs_;
  std::vector<std::function<moss::Status(onednn::OnednnScratch&)>> steps_;
};

// In chain mode the first conv picks its input layout; probe it with src = any.
Layout first_conv_layout(const Dims& in, int64_t cout, int64_t k, int64_t stride, int threads) {
  onednn::ConvParams p;
  p.src_dims = in;
  p.weight_dims = {cout, in[1], k, k};
  p.strides = {stride, stride};
  p.pads_begin = p.pads_end = {k / 2, k / 2};
  p.src = LayoutChoice::any();
  p.dst = LayoutChoice::any();
  p.options.threads = threads;
  std::vector<float> w(static_cast<size_t>(cout * in[1] * k * k));
  return onednn::OnednnConv::create(p, w.data(), nullptr).value_or_die()->src_layout();
}

void build_resnet50(Chain& c, int threads) {
  const Dims in = {1, 3, 224, 224};
  Chain::Tensor x = c.input(in);
  if (c.blocked()) x = c.to_layout(x, first_conv_layout(in, 64, 7, 2, threads));
  const std::vector<PostOp> relu = {{PostOp::Kind::kRelu}};
  x = c.conv(x, 64, 7, 2, 1, relu);
  x = c.pool(x, onednn::PoolParams::Kind::kMax, {3, 3}, 2, 1, false);
  const int blocks[] = {3, 4, 6, 3};
  for (int s = 0; s < 4; ++s) {
    const int64_t mid = 64 << s;
    for (int b = 0; b < blocks[s]; ++b) {
      const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      Chain::Tensor identity = x;
      if (b == 0) identity = c.conv(x, mid * 4, 1, stride, 1, {});
      Chain::Tensor y = c.conv(x, mid, 1, 1, 1, relu);
      y = c.conv(y, mid, 3, stride, 1, relu);
      x = c.conv(y, mid * 4, 1, 1, 1, relu, &identity);
    }
  }
  x = c.pool(x, onednn::PoolParams::Kind::kAverage, {}, 1, 0, true);
  c.fc(x, 1000);
}

void build_mobilenet_v2(Chain& c, int threads) {
  const Dims in = {1, 3, 224, 224};
  Chain::Tensor x = c.input(in);
  if (c.blocked()) x = c.to_layout(x, first_conv_layout(in, 32, 3, 2, threads));
  const std::vector<PostOp> relu6 = {{PostOp::Kind::kClip, 0.f, 6.f}};
  x = c.conv(x, 32, 3, 2, 1, relu6);
  const int cfg[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                        {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t cin = 32;
  for (const auto& g : cfg) {
    for (int i = 0; i < g[2]; ++i) {
      const int64_t stride = i == 0 ? g[3] : 1, hidden = cin * g[0];
      Chain::Tensor y = x;
      if (g[0] != 1) y = c.conv(y, hidden, 1, 1, 1, relu6);
      y = c.conv(y, hidden, 3, stride, hidden, relu6);
      const bool res = stride == 1 && cin == g[1];
      y = c.conv(y, g[1], 1, 1, 1, {}, res ? &x : nullptr);
      x = y;
      cin = g[1];
    }
  }
  x = c.conv(x, 1280, 1, 1, 1, relu6);
  x = c.pool(x, onednn::PoolParams::Kind::kAverage, {}, 1, 0, true);
  c.fc(x, 1000);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  double budget = 2000;
  if (std::getenv("FTZ")) _mm_setcsr(_mm_getcsr() | 0x8040);  // flush-to-zero + denormals-are-zero
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i], v = argv[i + 1];
    if (f == "--threads") {
      threads.clear();
      for (char ch : v)
        if (ch >= '1' && ch <= '9') threads.push_back(ch - '0');
    } else if (f == "--ms") {
      budget = std::stod(v);
    } else {
      std::fprintf(stderr, "usage: %s [--threads 1,2] [--ms 2000]\n", argv[0]);
      return 2;
    }
  }
  for (int t : threads) {
    for (auto [name, build] :
         {std::pair{"resnet50", &build_resnet50}, std::pair{"mobilenet_v2", &build_mobilenet_v2}}) {
      double ms[2];
      Chain* last = nullptr;
      std::unique_ptr<Chain> chains[2];
      for (int blocked = 0; blocked < 2; ++blocked) {
        chains[blocked] = std::make_unique<Chain>(blocked == 1, t);
        build(*chains[blocked], t);
        ms[blocked] = chains[blocked]->run(budget);
        if (std::getenv("PROFILE")) chains[blocked]->profile(name, 20);
        last = chains[blocked].get();
      }
      std::printf(
          "%-13s threads=%d  %.2f GFLOP  %zu kernels  plain p50 %.2f ms  chain p50 %.2f ms\n", name,
          t, last->gflop(), last->steps(), ms[0], ms[1]);
      std::fflush(stdout);
    }
  }
  return 0;
}
