// The logic behind `moss model info|run|bench` (apps/moss/cmd_model_engine.cc stays thin).
// Output goes to the given stream so the functions are testable.
#pragma once

#include "common/status.h"

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace moss::engine {

// Inputs, outputs, operators (with counts) and the operators the engine does not support.
Status model_info(const std::filesystem::path& model, std::ostream& out);

// Runs the model on NAME=FILE inputs (.npy or TensorProto .pb) and writes DIR/<output>.npy.
Status model_run(const std::filesystem::path& model,
                 const std::vector<std::pair<std::string, std::filesystem::path>>& inputs,
                 const std::filesystem::path& output_dir, std::ostream& out);

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
};

// Compiles, runs warmup + iters on the given or synthetic inputs and ends with the one JSON line
// {"model","threads","compile_ms","p50_ms","p90_ms","weights_mb","arena_mb","peak_rss_mb"}.
Status model_bench(const std::filesystem::path& model, const BenchOptions& options,
                   std::ostream& out);

}  // namespace moss::engine
