// The logic behind `moss model info|run|bench` (apps/moss/cmd_model_engine.cc stays thin).
// Output goes to the given stream so the functions are testable.
#pragma once

#include "common/status.h"
#include "engine/quant/half_precision.h"

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace moss::engine {

// `--half-compute f32|bf16` (CompileOptions::half_compute): parsed, or kInvalidArgument.
Result<HalfCompute> parse_half_compute(const std::string& text);

// Inputs, outputs, operators (with counts) and the operators the engine does not support; how
// the model is computed (precision per step, a half model's half_compute, weight memory).
Status model_info(const std::filesystem::path& model, std::ostream& out,
                  HalfCompute half_compute = HalfCompute::kFloat32);

struct RunOptions {
  HalfCompute half_compute = HalfCompute::kFloat32;  // a float16/bfloat16 model's compute
  // Every input holds N requests stacked along dimension 0 (N random images for a batch-1
  // classifier): each slice runs as its own request, the outputs are stacked the same way.
  bool split_batch = false;
};

// Runs the model on NAME=FILE inputs (.npy or TensorProto .pb) and writes DIR/<output>.npy.
Status model_run(const std::filesystem::path& model,
                 const std::vector<std::pair<std::string, std::filesystem::path>>& inputs,
                 const std::filesystem::path& output_dir, std::ostream& out,
                 const RunOptions& options = {});

struct BenchOptions {
  int threads = 1;
  int iters = 20;
  int warmup = 2;
  int64_t batch = 1;       // for symbolic first dimensions
  int64_t sequence = 128;  // for other symbolic dimensions
  bool profile = false;    // print time per operator type (and the slowest steps) first
  // NAME=FILE inputs to time instead of synthetic ones (the rest stay synthetic), so a comparison
  // with another runtime times the same data (detection post-processing depends on it).
  std::vector<std::pair<std::string, std::filesystem::path>> inputs;
  HalfCompute half_compute = HalfCompute::kFloat32;  // a float16/bfloat16 model's compute
};

// Compiles, runs warmup + iters on the given or synthetic inputs and ends with the one JSON line
// {"model","threads","compile_ms","p50_ms","p90_ms","weights_mb","arena_mb","peak_rss_mb"}.
// p50/p90 are nearest-rank percentiles (common/percentile.h) of the timed iterations.
Status model_bench(const std::filesystem::path& model, const BenchOptions& options,
                   std::ostream& out);

}  // namespace moss::engine
