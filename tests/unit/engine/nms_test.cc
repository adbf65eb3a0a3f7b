// NonMaxSuppression's x-window search selects exactly what the greedy full scan selects, on a
// detection model's batched form (every class's boxes offset apart, one NMS call) and on
// crowded, tied and non-finite boxes.
#include "engine/runtime/execution_context.h"
#include "model_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

struct Scene {
  int64_t n = 0, classes = 1;
  std::vector<float> boxes;   // [n, 4] y1 x1 y2 x2
  std::vector<float> scores;  // [classes, n]
};

float iou(const float* a, const float* b) {
  const float ay1 = std::min(a[0], a[2]), ax1 = std::min(a[1], a[3]);
  const float ay2 = std::max(a[0], a[2]), ax2 = std::max(a[1], a[3]);
  const float by1 = std::min(b[0], b[2]), bx1 = std::min(b[1], b[3]);
  const float by2 = std::max(b[0], b[2]), bx2 = std::max(b[1], b[3]);
  const float ih = std::min(ay2, by2) - std::max(ay1, by1);
  const float iw = std::min(ax2, bx2) - std::max(ax1, bx1);
  if (ih <= 0 || iw <= 0) return 0;
  const float inter = ih * iw;
  const float uni = (ay2 - ay1) * (ax2 - ax1) + (by2 - by1) * (bx2 - bx1) - inter;
  return uni <= 0 ? 0 : inter / uni;
}

// The spec's greedy algorithm, every kept box checked: [class, index] rows in selection order.
std::vector<int64_t> brute_force(const Scene& s, int64_t max_out, float iou_th, float score_th) {
  std::vector<int64_t> out;
  for (int64_t c = 0; c < s.classes; ++c) {
    const float* sc = s.scores.data() + c * s.n;
    std::vector<int64_t> order;
    for (int64_t i = 0; i < s.n; ++i) {
      if (sc[i] > score_th) order.push_back(i);
    }
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return sc[a] > sc[b]; });
    std::vector<int64_t> kept;
    for (int64_t i : order) {
      if (static_cast<int64_t>(kept.size()) >= max_out) break;
      bool suppressed = false;
      for (int64_t k : kept) suppressed |= iou(&s.boxes[i * 4], &s.boxes[k * 4]) > iou_th;
      if (suppressed) continue;
      kept.push_back(i);
      out.insert(out.end(), {0, c, i});
    }
  }
  return out;
}

std::vector<int64_t> run_nms(const Scene& s, int64_t max_out, float iou_th, float score_th) {
  ModelBuilder b(11);
  b.input("boxes", F, {1, s.n, 4}).input("scores", F, {1, s.classes, s.n});
  b.output("selected", onnx::TensorProto::INT64);
  b.init_i("max_out", {1}, {max_out}).init_f("iou", {1}, {iou_th}).init_f("score", {1}, {score_th});
  b.node("NonMaxSuppression", {"boxes", "scores", "max_out", "iou", "score"}, {"selected"});
  auto model = CompiledModel::compile(b.bytes()).value_or_die();
  ExecutionContext ctx(model);
  auto tensor = [](std::vector<int64_t> shape, const std::vector<float>& v) {
    Tensor t = Tensor::zeros(DType::kFloat32, shape).value_or_die();
    std::copy(v.begin(), v.end(), t.data<float>());
    return t;
  };
  auto outs = ctx.run(std::vector<NamedTensor>{{"boxes", tensor({1, s.n, 4}, s.boxes)},
                                               {"scores", tensor({1, s.classes, s.n}, s.scores)}})
                  .value_or_die();
  const Tensor& sel = outs[0].tensor;
  return std::vector<int64_t>(sel.data<int64_t>(), sel.data<int64_t>() + sel.numel());
}

// `groups` clusters of overlapping boxes, group g offset by g * 1000 in x and y (batched_nms).
Scene clustered(int64_t n, int64_t groups, int64_t classes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> pos(0.f, 300.f), size(5.f, 120.f), score(0.f, 1.f);
  Scene s;
  s.n = n;
  s.classes = classes;
  for (int64_t i = 0; i < n; ++i) {
    const float off = 1000.f * static_cast<float>(i % groups);
    const float y = pos(rng) + off, x = pos(rng) + off;
    s.boxes.insert(s.boxes.end(), {y, x, y + size(rng), x + size(rng)});
  }
  for (int64_t i = 0; i < n * classes; ++i) {
    s.scores.push_back(std::round(score(rng) * 50.f) / 50.f);  // many ties
  }
  return s;
}

TEST(EngineNms, WindowedSearchSelectsWhatTheFullScanSelects) {
  const Scene batched = clustered(3000, 60, 1, 7);
  for (float th : {0.f, 0.3f, 0.5f, 0.9f}) {
    EXPECT_EQ(run_nms(batched, 3000, th, 0.1f), brute_force(batched, 3000, th, 0.1f)) << th;
  }
  const Scene crowded = clustered(500, 1, 3, 11);  // one crowded image, three classes
  EXPECT_EQ(run_nms(crowded, 40, 0.45f, 0.f), brute_force(crowded, 40, 0.45f, 0.f));
  EXPECT_EQ(run_nms(crowded, 1000, 0.2f, 0.5f), brute_force(crowded, 1000, 0.2f, 0.5f));
}

TEST(EngineNms, FlippedAndNonFiniteBoxesFollowTheFullScan) {
  Scene s = clustered(300, 3, 1, 5);
  for (int64_t i = 0; i < s.n; i += 7) std::swap(s.boxes[i * 4 + 1], s.boxes[i * 4 + 3]);  // x2 < x1
  EXPECT_EQ(run_nms(s, 300, 0.4f, 0.f), brute_force(s, 300, 0.4f, 0.f));
  s.boxes[8] = std::numeric_limits<float>::quiet_NaN();
  s.boxes[21] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(run_nms(s, 300, 0.4f, 0.f), brute_force(s, 300, 0.4f, 0.f));
  EXPECT_EQ(run_nms(s, 300, -0.5f, 0.f), brute_force(s, 300, -0.5f, 0.f));  // every box suppresses
}

}  // namespace
}  // namespace moss::engine
