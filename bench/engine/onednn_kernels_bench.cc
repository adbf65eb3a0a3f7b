// oneDNN kernel microbenchmark: every convolution of ResNet-50 and MobileNetV2 (batch 1, 224x224)
// and BERT-4's matmuls, at 1 and 2 threads, with plain (NCHW) versus oneDNN-chosen blocked
// layouts. Prints one row per distinct layer and the whole-network conv totals.
//   onednn_kernels_bench [--threads 1,2] [--model resnet50|mobilenet_v2|bert4|all] [--ms 60]
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "common/percentile.h"
#include "engine/kernels/onednn/onednn_ops.h"

namespace onednn = moss::engine::onednn;
using onednn::Dims;

namespace {

struct ConvLayer {
  std::string name;
  int64_t cin, cout, hw, k, stride, group, count;
  onednn::PostOp::Kind act;
};

void add(std::vector<ConvLayer>& v, ConvLayer l) {
  for (auto& e : v) {
    if (e.cin == l.cin && e.cout == l.cout && e.hw == l.hw && e.k == l.k && e.stride == l.stride &&
        e.group == l.group) {
      e.count += l.count;
      return;
    }
  }
  v.push_back(std::move(l));
}

std::vector<ConvLayer> resnet50() {
  using K = onednn::PostOp::Kind;
  std::vector<ConvLayer> v;
  add(v, {"stem 7x7/2", 3, 64, 224, 7, 2, 1, 1, K::kRelu});
  const int blocks[] = {3, 4, 6, 3};
  int64_t in = 64, hw = 56;
  for (int s = 0; s < 4; ++s) {
    const int64_t mid = 64 << s, out = mid * 4;
    for (int b = 0; b < blocks[s]; ++b) {
      const int64_t stride = (b == 0 && s > 0) ? 2 : 1;
      const std::string st = fmt::format("s{}", s + 1);
      add(v, {fmt::format("{} 1x1 reduce", st), in, mid, hw, 1, 1, 1, 1, K::kRelu});
      add(v, {fmt::format("{} 3x3{}", st, stride == 2 ? "/2" : ""), mid, mid, hw, 3, stride, 1, 1,
              K::kRelu});
      if (b == 0)
        add(v, {fmt::format("{} 1x1 downsample", st), in, out, hw, 1, stride, 1, 1, K::kRelu});
      hw /= stride;
      add(v, {fmt::format("{} 1x1 expand(+res)", st), mid, out, hw, 1, 1, 1, 1, K::kAddResidual});
      in = out;
    }
  }
  return v;
}

std::vector<ConvLayer> mobilenet_v2() {
  using K = onednn::PostOp::Kind;
  std::vector<ConvLayer> v;
  add(v, {"stem 3x3/2", 3, 32, 224, 3, 2, 1, 1, K::kClip});
  const int cfg[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                        {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
  int64_t in = 32, hw = 112;
  for (const auto& c : cfg) {
    for (int i = 0; i < c[2]; ++i) {
      const int64_t stride = i == 0 ? c[3] : 1, hidden = in * c[0];
      if (c[0] != 1) add(v, {"pw expand", in, hidden, hw, 1, 1, 1, 1, K::kClip});
      add(v, {fmt::format("dw 3x3{}", stride == 2 ? "/2" : ""), hidden, hidden, hw, 3, stride,
              hidden, 1, K::kClip});
      hw /= stride;
      const bool res = stride == 1 && in == c[1];
      add(v, {res ? "pw project(+res)" : "pw project", hidden, c[1], hw, 1, 1, 1, 1,
              res ? K::kAddResidual : K::kLinear});
      in = c[1];
    }
  }
  add(v, {"pw 1x1 last", 320, 1280, 7, 1, 1, 1, 1, K::kClip});
  return v;
}

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

// Median milliseconds of `f` over as many runs as fit in budget_ms (at least 5).
template <typename F>
double time_ms(F&& f, double budget_ms) {
  for (int i = 0; i < 3; ++i) f();
  std::vector<double> t;
  double total = 0;
  while (t.size() < 5 || (total < budget_ms && t.size() < 2000)) {
    auto a = std::chrono::steady_clock::now();
    f();
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count();
    t.push_back(ms);
    total += ms;
  }
  return moss::percentile_in_place(t, 0.5);
}

struct Timing {
  double ms = 0, gflops = 0;
  std::string impl;
};

Timing bench_conv(const ConvLayer& l, bool blocked, int threads, double budget) {
  onednn::ConvParams p;
  p.src_dims = {1, l.cin, l.hw, l.hw};
  p.weight_dims = {l.cout, l.cin / l.group, l.k, l.k};
  p.strides = {l.stride, l.stride};
  const int64_t pad = l.k / 2;
  p.pads_begin = {pad, pad};
  p.pads_end = {pad, pad};
  p.group = l.group;
  p.has_bias = true;
  if (l.act == onednn::PostOp::Kind::kClip)
    p.options.post_ops = {{l.act, 0.f, 6.f}};
  else if (l.act == onednn::PostOp::Kind::kAddResidual)
    p.options.post_ops = {{l.act}, {onednn::PostOp::Kind::kRelu}};
  else if (l.act != onednn::PostOp::Kind::kLinear)
    p.options.post_ops = {{l.act}};
  p.options.threads = threads;
  if (blocked) {
    p.src = onednn::LayoutChoice::any();
    p.dst = onednn::LayoutChoice::any();
  }
  auto w = random_floats(static_cast<size_t>(l.cout * (l.cin / l.group) * l.k * l.k), 1);
  auto b = random_floats(static_cast<size_t>(l.cout), 2);
  if (blocked && l.act == onednn::PostOp::Kind::kAddResidual) {
    onednn::ConvParams q = p;
    q.options.post_ops.clear();
    auto probe = onednn::OnednnConv::create(q, w.data(), b.data());
    if (probe.ok()) p.residual_layout = (*probe)->dst_layout();
  }
  auto conv = onednn::OnednnConv::create(p, w.data(), b.data());
  if (!conv.ok()) {
    std::fprintf(stderr, "%s: %s\n", l.name.c_str(), conv.status().to_string().c_str());
    return {};
  }
  const auto& k = **conv;
  auto x = random_floats(k.src_layout().bytes() / 4, 3);
  std::vector<float> y(k.dst_layout().bytes() / 4), res = random_floats(y.size(), 4);
  auto scratch = onednn::OnednnScratch::create().value_or_die();
  scratch.reserve(k.scratchpad_bytes());
  const bool has_res = l.act == onednn::PostOp::Kind::kAddResidual;
  Timing t;
  t.ms = time_ms(
      [&] { (void)k.execute(x.data(), y.data(), has_res ? y.data() : nullptr, scratch); }, budget);
  t.gflops = k.flops() / (t.ms * 1e6);
  t.impl = k.implementation();
  return t;
}

void run_convs(const char* model, const std::vector<ConvLayer>& layers, int threads,
               double budget) {
  std::printf("\n## %s convolutions, %d thread(s)\n", model, threads);
  std::printf("%-20s %5s %5s %4s %2s %s %4s %4s | %8s %7s | %8s %7s | %s\n", "layer", "cin", "cout",
              "hw", "k", "s", "grp", "n", "plain ms", "GFLOP/s", "block ms", "GFLOP/s",
              "impl (plain / blocked)");
  double total_plain = 0, total_blocked = 0, total_flops = 0;
  for (const auto& l : layers) {
    Timing pl = bench_conv(l, false, threads, budget);
    Timing bl = bench_conv(l, true, threads, budget);
    total_plain += pl.ms * l.count;
    total_blocked += bl.ms * l.count;
    total_flops += pl.gflops * pl.ms * 1e6 * l.count;
    std::printf("%-20s %5ld %5ld %4ld %2ld %ld %4ld %4ld | %8.3f %7.1f | %8.3f %7.1f | %s / %s\n",
                l.name.c_str(), l.cin, l.cout, l.hw, l.k, l.stride, l.group, l.count, pl.ms,
                pl.gflops, bl.ms, bl.gflops, pl.impl.c_str(), bl.impl.c_str());
  }
  std::printf(
      "TOTAL %s threads=%d: %.2f GFLOP, plain %.2f ms (%.1f GFLOP/s), blocked %.2f ms "
      "(%.1f GFLOP/s)\n",
      model, threads, total_flops / 1e9, total_plain, total_flops / (total_plain * 1e6),
      total_blocked, total_flops / (total_blocked * 1e6));
}

void run_bert(int threads, double budget) {
  struct Mm {
    const char* name;
    Dims a, b;
    bool constant;
    int count;
  };
  const Mm mms[] = {{"qkv/out proj 128x256x256", {1, 128, 256}, {256, 256}, true, 16},
                    {"ffn1 128x256x1024 +gelu", {1, 128, 256}, {256, 1024}, true, 4},
                    {"ffn2 128x1024x256", {1, 128, 1024}, {1024, 256}, true, 4},
                    {"scores 4x128x64x128", {1, 4, 128, 64}, {1, 4, 64, 128}, false, 4},
                    {"context 4x128x128x64", {1, 4, 128, 128}, {1, 4, 128, 64}, false, 4}};
  std::printf("\n## bert4 matmuls, %d thread(s)\n", threads);
  double total = 0;
  for (const auto& m : mms) {
    onednn::MatmulParams p;
    p.a_dims = m.a;
    p.b_dims = m.b;
    p.options.threads = threads;
    if (m.constant) p.bias_dims = {m.b.back()};
    if (std::strstr(m.name, "gelu")) p.options.post_ops = {{onednn::PostOp::Kind::kGeluErf}};
    size_t nb = 1, na = 1;
    for (auto d : m.b) nb *= d;
    for (auto d : m.a) na *= d;
    auto bw = random_floats(nb, 1), bias = random_floats(m.b.back(), 2), a = random_floats(na, 3);
    auto k = onednn::OnednnMatmul::create(p, m.constant ? bw.data() : nullptr,
                                          m.constant ? bias.data() : nullptr);
    if (!k.ok()) {
      std::fprintf(stderr, "%s: %s\n", m.name, k.status().to_string().c_str());
      continue;
    }
    size_t ny = 1;
    for (auto d : (*k)->dst_dims()) ny *= d;
    std::vector<float> y(ny);
    auto scratch = onednn::OnednnScratch::create().value_or_die();
    scratch.reserve((*k)->scratchpad_bytes());
    double ms = time_ms(
        [&] { (void)(*k)->execute(a.data(), bw.data(), y.data(), nullptr, scratch); }, budget);
    total += ms * m.count;
    std::printf("%-28s x%-3d %8.3f ms %7.1f GFLOP/s  %s\n", m.name, m.count, ms,
                (*k)->flops() / (ms * 1e6), (*k)->implementation().c_str());
  }
  std::printf("TOTAL bert4 matmuls threads=%d: %.2f ms\n", threads, total);
  auto scratch = onednn::OnednnScratch::create().value_or_die();
  auto sm = onednn::OnednnSoftmax::create({{1, 4, 128, 128}, -1, false, {{}, threads}});
  auto ln_scale = random_floats(256, 7), ln_bias = random_floats(256, 8);
  auto ln = onednn::OnednnLayerNorm::create({{1, 128, 256}, -1, 1e-12f, true, {{}, threads}},
                                            ln_scale.data(), ln_bias.data());
  if (sm.ok() && ln.ok()) {
    auto x = random_floats(4 * 128 * 128, 9);
    std::vector<float> y(x.size());
    double sm_ms = time_ms([&] { (void)(*sm)->execute(x.data(), y.data(), scratch); }, budget);
    double ln_ms = time_ms([&] { (void)(*ln)->execute(x.data(), y.data(), scratch); }, budget);
    std::printf("softmax 4x128x128 x4 %.3f ms (%s); layernorm 128x256 x9 %.3f ms (%s)\n", sm_ms,
                (*sm)->implementation().c_str(), ln_ms, (*ln)->implementation().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> threads = {1, 2};
  std::string model = "all";
  double budget = 60;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i], v = argv[i + 1];
    if (f == "--threads") {
      threads.clear();
      for (char c : v)
        if (c >= '1' && c <= '9') threads.push_back(c - '0');
    } else if (f == "--model") {
      model = v;
    } else if (f == "--ms") {
      budget = std::stod(v);
    } else {
      std::fprintf(
          stderr, "usage: %s [--threads 1,2] [--model resnet50|mobilenet_v2|bert4|all] [--ms 60]\n",
          argv[0]);
      return 2;
    }
  }
  for (int t : threads) {
    if (model == "all" || model == "resnet50") run_convs("resnet50", resnet50(), t, budget);
    if (model == "all" || model == "mobilenet_v2")
      run_convs("mobilenet_v2", mobilenet_v2(), t, budget);
    if (model == "all" || model == "bert4") run_bert(t, budget);
  }
  return 0;
}
