// `moss model bench` with given inputs: a comparison with another runtime must time the same data
// (bench/engine/compare_ort.py), so a NAME=FILE input replaces the synthetic one of that name.
#include "common/npy.h"
#include "engine/tools/model_commands.h"
#include "model_builder.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace moss::engine {
namespace {

using testing::ModelBuilder;
constexpr int F = onnx::TensorProto::FLOAT;

class ModelBenchInputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("moss_model_bench_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    ModelBuilder b(17);
    b.input("x", F, {-1, 2}).input("y", F, {-1, 2}).output("z");
    b.node("Add", {"x", "y"}, {"z"});
    const auto bytes = b.bytes();
    std::ofstream f(model(), std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path model() const { return dir_ / "add.onnx"; }
  std::filesystem::path npy(const std::string& name, std::vector<int64_t> shape) const {
    auto t = Tensor::zeros(DType::kFloat32, std::move(shape)).value_or_die();
    const auto path = dir_ / (name + ".npy");
    EXPECT_TRUE(write_npy_file(path, t).ok());
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ModelBenchInputs, GivenInputReplacesSyntheticOneOfThatName) {
  BenchOptions o;
  o.iters = 2;
  o.batch = 3;                            // synthetic y: [3, 2]
  o.inputs = {{"x", npy("x", {3, 2})}};  // given x: same shape, file data
  std::ostringstream out;
  const Status s = model_bench(model(), o, out);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_NE(out.str().find("inputs: x[3, 2] y[3, 2]"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("\"p50_ms\""), std::string::npos) << out.str();
}

TEST_F(ModelBenchInputs, PercentilesAreNearestRankOfTheTimedIterations) {
  // Two iterations: nearest rank (common/percentile.h) makes p50 the faster one and p90 the
  // slower (the old floor(q*n) index gave the slower one for both). The times are not
  // controlled, only that two runs measured in nanoseconds differ, so the order is checked.
  BenchOptions o;
  o.iters = 2;
  o.warmup = 0;
  std::ostringstream out;
  const Status s = model_bench(model(), o, out);
  ASSERT_TRUE(s.ok()) << s.message();
  std::string text = out.str();
  text.pop_back();  // the JSON line is the last one
  const auto j = nlohmann::json::parse(text.substr(text.rfind('\n') + 1));
  EXPECT_GT(j["p50_ms"].get<double>(), 0.0);
  EXPECT_LT(j["p50_ms"].get<double>(), j["p90_ms"].get<double>());
}

TEST_F(ModelBenchInputs, GivenInputShapeIsTheFilesNotTheSyntheticDefault) {
  BenchOptions o;
  o.iters = 1;
  o.batch = 1;
  o.inputs = {{"x", npy("x", {4, 2})}, {"y", npy("y", {4, 2})}};
  std::ostringstream out;
  const Status s = model_bench(model(), o, out);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_NE(out.str().find("inputs: x[4, 2] y[4, 2]"), std::string::npos) << out.str();
}

TEST_F(ModelBenchInputs, UnknownOrUnreadableInputIsRefused) {
  BenchOptions o;
  o.iters = 1;
  o.inputs = {{"nope", npy("x", {1, 2})}};
  std::ostringstream out;
  Status s = model_bench(model(), o, out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("no such input"), std::string::npos) << s.message();
  o.inputs = {{"x", dir_ / "missing.npy"}};
  s = model_bench(model(), o, out);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("input 'x'"), std::string::npos) << s.message();
}

TEST_F(ModelBenchInputs, ProfileTimesTheTailNodesToo) {
  // NonZero's output shape depends on the data: it runs in the plan's tail, where a detection
  // model spends most of its time (NMS), so the profile must show it.
  ModelBuilder b(17);
  b.input("x", F, {3, 2}).output("z").output("nz", onnx::TensorProto::INT64);
  b.init_f("y", {3, 2}, {1, 0, 2, 0, 3, 0});
  b.node("Add", {"x", "y"}, {"z"});
  b.node("NonZero", {"z"}, {"nz"});
  const auto bytes = b.bytes();
  const auto path = dir_ / "tail.onnx";
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  BenchOptions o;
  o.iters = 2;
  o.profile = true;
  std::ostringstream out;
  const Status s = model_bench(path, o, out);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_NE(out.str().find("1 steps and 1 tail nodes"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("NonZero [tail] x1"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("Add [ref] x1"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace moss::engine
