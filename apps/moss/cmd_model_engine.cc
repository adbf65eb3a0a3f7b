// `moss model info|run|bench`: flag parsing only; the logic is in engine/tools/model_commands.
#include "apps/moss/command.h"
#include "engine/tools/model_commands.h"

#include <iostream>
#include <memory>

namespace moss::cli {
namespace {

Status parse_named_files(const std::vector<std::string>& flags,
                         std::vector<std::pair<std::string, std::filesystem::path>>& out) {
  for (const std::string& s : flags) {
    const auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) return invalid_argument("--input '{}' is not NAME=FILE", s);
    out.emplace_back(s.substr(0, eq), s.substr(eq + 1));
  }
  return Status::Ok();
}

// --half-compute on a subcommand (a float16/bfloat16 model's compute precision).
void add_half_compute(CLI::App* app, std::string& value) {
  app->add_option("--half-compute", value,
                  "float16/bfloat16 models: f32 (weights held half, widened per use) or bf16 "
                  "(convolutions in bfloat16 where the CPU has AVX512-BF16)")
      ->capture_default_str();
}

}  // namespace

void register_model_engine_commands(CLI::App& model) {
  struct InfoFlags {
    std::string model, half_compute = "f32";
  };
  auto inf = std::make_shared<InfoFlags>();
  CLI::App* info = model.add_subcommand("info", "Show a model's inputs, outputs and operators");
  info->add_option("--model", inf->model, "ONNX model file")->required();
  add_half_compute(info, inf->half_compute);
  bind(info, [inf]() -> Status {
    MOSS_ASSIGN_OR_RETURN(auto half, engine::parse_half_compute(inf->half_compute));
    return engine::model_info(inf->model, std::cout, half);
  });

  struct RunFlags {
    std::string model, output_dir, half_compute = "f32";
    std::vector<std::string> inputs;
    bool split_batch = false;
  };
  auto rf = std::make_shared<RunFlags>();
  CLI::App* run = model.add_subcommand("run", "Run a model on tensor files, write outputs as .npy");
  run->add_option("--model", rf->model, "ONNX model file")->required();
  run->add_option("--input", rf->inputs, "NAME=FILE (.npy or TensorProto .pb), repeatable");
  run->add_option("--output-dir", rf->output_dir, "Directory for <output name>.npy")->required();
  add_half_compute(run, rf->half_compute);
  run->add_flag("--split-batch", rf->split_batch,
                "Inputs hold N requests stacked on dimension 0: run each, stack the outputs");
  bind(run, [rf]() -> Status {
    std::vector<std::pair<std::string, std::filesystem::path>> inputs;
    MOSS_RETURN_IF_ERROR(parse_named_files(rf->inputs, inputs));
    engine::RunOptions options;
    MOSS_ASSIGN_OR_RETURN(options.half_compute, engine::parse_half_compute(rf->half_compute));
    options.split_batch = rf->split_batch;
    return engine::model_run(rf->model, inputs, rf->output_dir, std::cout, options);
  });

  struct BenchFlags {
    std::string model, half_compute = "f32";
    std::vector<std::string> inputs;
    engine::BenchOptions options;
  };
  auto bf = std::make_shared<BenchFlags>();
  CLI::App* bench = model.add_subcommand("bench", "Time a model on synthetic or given inputs");
  bench->add_option("--model", bf->model, "ONNX model file")->required();
  bench->add_option("--threads", bf->options.threads, "Intra-op threads")->capture_default_str();
  bench->add_option("--iters", bf->options.iters, "Timed iterations")->capture_default_str();
  bench->add_flag("--profile", bf->options.profile, "Print time per operator and slowest steps");
  bench->add_option("--input", bf->inputs, "NAME=FILE to time instead of a synthetic input, repeatable");
  add_half_compute(bench, bf->half_compute);
  bind(bench, [bf]() -> Status {
    MOSS_RETURN_IF_ERROR(parse_named_files(bf->inputs, bf->options.inputs));
    MOSS_ASSIGN_OR_RETURN(bf->options.half_compute, engine::parse_half_compute(bf->half_compute));
    return engine::model_bench(bf->model, bf->options, std::cout);
  });
}

}  // namespace moss::cli
