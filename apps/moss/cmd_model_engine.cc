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

}  // namespace

void register_model_engine_commands(CLI::App& model) {
  auto info_model = std::make_shared<std::string>();
  CLI::App* info = model.add_subcommand("info", "Show a model's inputs, outputs and operators");
  info->add_option("--model", *info_model, "ONNX model file")->required();
  bind(info, [info_model]() { return engine::model_info(*info_model, std::cout); });

  struct RunFlags {
    std::string model, output_dir;
    std::vector<std::string> inputs;
  };
  auto rf = std::make_shared<RunFlags>();
  CLI::App* run = model.add_subcommand("run", "Run a model on tensor files, write outputs as .npy");
  run->add_option("--model", rf->model, "ONNX model file")->required();
  run->add_option("--input", rf->inputs, "NAME=FILE (.npy or TensorProto .pb), repeatable");
  run->add_option("--output-dir", rf->output_dir, "Directory for <output name>.npy")->required();
  bind(run, [rf]() -> Status {
    std::vector<std::pair<std::string, std::filesystem::path>> inputs;
    MOSS_RETURN_IF_ERROR(parse_named_files(rf->inputs, inputs));
    return engine::model_run(rf->model, inputs, rf->output_dir, std::cout);
  });

  struct BenchFlags {
    std::string model;
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
  bind(bench, [bf]() -> Status {
    MOSS_RETURN_IF_ERROR(parse_named_files(bf->inputs, bf->options.inputs));
    return engine::model_bench(bf->model, bf->options, std::cout);
  });
}

}  // namespace moss::cli
