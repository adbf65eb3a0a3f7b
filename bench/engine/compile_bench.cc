// Where a model's compile time goes, cold (a fresh process: the first compile of an instance) and
// warm (a second compile in the same process), per phase (CompiledModel::compile_timing): parse,
// passes, kernels, pack, plan. The anchor, measured in the same child process just before the
// compile, is copying the model's bytes into fresh memory: a cold compile is mostly fresh memory
// touched (parse copies the weights, packing writes them again) and the first oneDNN JIT.
//   compile_bench --models DIR [--model NAME]... [--rounds N] [--threads T] [--snapshot]
//                 [--json FILE]
// Each round forks one child per model, so every cold figure is a new process's first compile.
// After the cold compile the child times the first and a second run on zero inputs (the first
// pays what a compile leaves to it: arena and scratchpad pages, lazily built state).
// --snapshot: what a worker's compiled-plan cache hit does instead of compile (worker/plan_cache.h):
// a first child compiles each model once and writes its PlanSnapshot to a file; each round's
// child reads that file into fresh aligned memory (the anchor: what decrypting the cache entry
// writes), parses it and rebuilds the model with CompiledModel::compile_snapshot (parse = the
// graph read back, pack = packed weights replayed).
#include "bench/common/json_output.h"
#include "common/file_util.h"
#include "common/percentile.h"
#include "engine/runtime/compiled_model.h"
#include "engine/runtime/execution_context.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using moss::engine::CompiledModel;
using moss::engine::CompileTiming;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Sample {
  double touch_ms = 0;  // anchor: model (or snapshot) bytes copied into fresh memory
  CompileTiming cold, warm;
  double first_run_ms = 0, second_run_ms = 0;  // after the cold compile
};

constexpr size_t kFields = 3 + 2 * 6;

void to_array(const Sample& s, double* out) {
  out[0] = s.touch_ms;
  out[1 + 12] = s.first_run_ms;
  out[2 + 12] = s.second_run_ms;
  const CompileTiming* ts[] = {&s.cold, &s.warm};
  for (int i = 0; i < 2; ++i) {
    const CompileTiming& t = *ts[i];
    double* o = out + 1 + 6 * i;
    o[0] = t.parse_ms, o[1] = t.passes_ms, o[2] = t.kernels_ms, o[3] = t.pack_ms, o[4] = t.plan_ms;
    o[5] = t.total_ms;
  }
}

Sample from_array(const double* in) {
  Sample s;
  s.touch_ms = in[0];
  s.first_run_ms = in[1 + 12];
  s.second_run_ms = in[2 + 12];
  CompileTiming* ts[] = {&s.cold, &s.warm};
  for (int i = 0; i < 2; ++i) {
    CompileTiming& t = *ts[i];
    const double* o = in + 1 + 6 * i;
    t.parse_ms = o[0], t.passes_ms = o[1], t.kernels_ms = o[2], t.pack_ms = o[3], t.plan_ms = o[4];
    t.total_ms = o[5];
  }
  return s;
}

// Zero inputs of the model's static shapes, then the first and a second run.
bool time_runs(std::shared_ptr<const CompiledModel> model, Sample& s) {
  std::vector<moss::NamedTensor> inputs;
  for (const auto& io : model->inputs()) {
    auto t = moss::Tensor::zeros(io.dtype, io.dims);
    if (!t.ok()) return false;
    inputs.push_back({io.name, std::move(t).value()});
  }
  moss::engine::ExecutionContext ctx(std::move(model));
  for (double* ms : {&s.first_run_ms, &s.second_run_ms}) {
    const auto t0 = Clock::now();
    auto r = ctx.run(inputs);
    if (!r.ok()) {
      std::fprintf(stderr, "compile_bench: run: %s\n", r.status().to_string().c_str());
      return false;
    }
    *ms = ms_since(t0);
  }
  return true;
}

// 64-byte aligned bytes, as the plan cache decrypts an entry into.
struct Aligned {
  uint8_t* data = nullptr;
  size_t size = 0;
  explicit Aligned(size_t n)
      : data(static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(64, (n + 63) / 64 * 64)))),
        size(n) {}
  ~Aligned() { std::free(data); }
};

// In the child: read, anchor, compile (from the model, or from its snapshot) twice, with the two
// runs after the first; the figures go back through the pipe.
int child(const std::filesystem::path& path, int threads, bool snapshot, int fd) {
  auto bytes = moss::read_file(path, size_t{2} << 30);
  if (!bytes.ok()) {
    std::fprintf(stderr, "compile_bench: %s\n", bytes.status().to_string().c_str());
    return 1;
  }
  Sample s;
  auto t0 = Clock::now();
  auto copy = std::make_shared<Aligned>(bytes->size());
  std::memcpy(copy->data, bytes->data(), bytes->size());
  s.touch_ms = ms_since(t0);
  std::shared_ptr<const moss::engine::PlanSnapshot> snap;
  if (snapshot) {
    auto parsed = moss::engine::PlanSnapshot::parse(copy, {copy->data, copy->size});
    if (!parsed.ok()) {
      std::fprintf(stderr, "compile_bench: %s: %s\n", path.c_str(), parsed.status().to_string().c_str());
      return 1;
    }
    snap = *parsed;
  }
  copy.reset();  // the snapshot keeps it alive when it reads it in place
  moss::engine::CompileOptions options;
  options.intra_op_threads = threads;
  for (CompileTiming* t : {&s.cold, &s.warm}) {
    auto m = snapshot ? CompiledModel::compile_snapshot(*snap, options) : CompiledModel::compile(*bytes, options);
    if (!m.ok()) {
      std::fprintf(stderr, "compile_bench: %s: %s\n", path.c_str(), m.status().to_string().c_str());
      return 1;
    }
    *t = (*m)->compile_timing();
    if (t == &s.cold && !time_runs(*m, s)) return 1;
  }
  double out[kFields];
  to_array(s, out);
  return write(fd, out, sizeof out) == static_cast<ssize_t>(sizeof out) ? 0 : 1;
}

// In a child (the parent's oneDNN state must stay fresh for the children it forks): the model
// compiled with its snapshot recorded, written to `out`.
bool record_snapshot(const std::filesystem::path& model, int threads, const std::filesystem::path& out) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    auto bytes = moss::read_file(model, size_t{2} << 30);
    if (!bytes.ok()) _exit(1);
    moss::engine::CompileOptions options;
    options.intra_op_threads = threads;
    options.record_packed_weights = true;
    auto m = CompiledModel::compile(*bytes, options);
    if (!m.ok() || !(*m)->snapshot()) _exit(1);
    const std::vector<uint8_t> data = (*m)->snapshot()->serialize();
    std::ofstream f(out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    _exit(f.good() ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool run_child(const std::filesystem::path& path, int threads, bool snapshot, Sample& s) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    _exit(child(path, threads, snapshot, fds[1]));
  }
  close(fds[1]);
  double in[kFields];
  size_t got = 0;
  while (got < sizeof in) {
    const ssize_t n = read(fds[0], reinterpret_cast<char*>(in) + got, sizeof in - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (got != sizeof in || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return false;
  s = from_array(in);
  return true;
}

double median(const std::vector<double>& v) { return moss::percentile(v, 0.5); }

nlohmann::ordered_json timing_json(const std::vector<Sample>& samples, bool cold) {
  auto med = [&](auto field) {
    std::vector<double> v;
    for (const Sample& s : samples) v.push_back(field(cold ? s.cold : s.warm));
    return median(v);
  };
  return {{"parse", med([](const CompileTiming& t) { return t.parse_ms; })},
          {"passes", med([](const CompileTiming& t) { return t.passes_ms; })},
          {"kernels", med([](const CompileTiming& t) { return t.kernels_ms; })},
          {"pack", med([](const CompileTiming& t) { return t.pack_ms; })},
          {"plan", med([](const CompileTiming& t) { return t.plan_ms; })},
          {"total", med([](const CompileTiming& t) { return t.total_ms; })}};
}

}  // namespace

int main(int argc, char** argv) {
  std::string models_dir = "models", json_path;
  std::vector<std::string> names;
  int rounds = 3, threads = 1;
  bool snapshot = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "compile_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--models") models_dir = next();
    else if (a == "--model") names.push_back(next());
    else if (a == "--rounds") rounds = std::max(1, std::atoi(next().c_str()));
    else if (a == "--threads") threads = std::max(1, std::atoi(next().c_str()));
    else if (a == "--snapshot") snapshot = true;
    else if (a == "--json") json_path = next();
    else {
      std::printf("usage: compile_bench --models DIR [--model NAME]... [--rounds N] [--threads T] "
                  "[--snapshot] [--json FILE]\n(default models: mobilenet_v2 resnet50)\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  if (names.empty()) names = {"mobilenet_v2", "resnet50"};
  std::vector<std::filesystem::path> paths;
  std::filesystem::path snapshot_dir;
  if (snapshot) {
    char tmpl[] = "/tmp/moss-compile-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) return 1;
    snapshot_dir = tmpl;
  }
  for (const auto& name : names) {
    const auto model = std::filesystem::path(models_dir) / name / "model.onnx";
    paths.push_back(snapshot ? snapshot_dir / (name + ".snapshot") : model);
    if (snapshot && !record_snapshot(model, threads, paths.back())) {
      std::fprintf(stderr, "compile_bench: %s: no snapshot recorded\n", model.c_str());
      std::filesystem::remove_all(snapshot_dir);
      return 1;
    }
  }
  std::vector<std::vector<Sample>> samples(names.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t m = 0; m < names.size(); ++m) {  // interleaved, so load swings hit every model
      Sample s;
      const auto& path = paths[m];
      if (!run_child(path, threads, snapshot, s)) {
        std::fprintf(stderr, "compile_bench: %s failed\n", path.c_str());
        if (snapshot) std::filesystem::remove_all(snapshot_dir);
        return 1;
      }
      samples[m].push_back(s);
    }
  }
  if (snapshot) std::filesystem::remove_all(snapshot_dir);
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  std::printf("median of %d fresh processes, %d thread(s), ms (anchor: %s bytes copied into "
              "fresh memory)%s\n", rounds, threads, snapshot ? "snapshot" : "model",
              snapshot ? "; compile = compile_snapshot from a plan-cache snapshot" : "");
  for (size_t m = 0; m < names.size(); ++m) {
    std::vector<double> touch, first, second;
    for (const Sample& s : samples[m]) {
      touch.push_back(s.touch_ms);
      first.push_back(s.first_run_ms);
      second.push_back(s.second_run_ms);
    }
    const double anchor = median(touch);
    const auto cold = timing_json(samples[m], true), warm = timing_json(samples[m], false);
    for (const auto* t : {&cold, &warm}) {
      const double total = (*t)["total"].get<double>();
      std::printf("%-13s %s compile %7.1f ms (%5.1fx anchor %.1f ms): parse %.1f passes %.1f "
                  "kernels %.1f pack %.1f plan %.1f\n",
                  names[m].c_str(), t == &cold ? "cold" : "warm", total,
                  anchor > 0 ? total / anchor : 0.0, anchor, (*t)["parse"].get<double>(),
                  (*t)["passes"].get<double>(), (*t)["kernels"].get<double>(),
                  (*t)["pack"].get<double>(), (*t)["plan"].get<double>());
    }
    std::printf("%-13s after the cold compile: first run %.1f ms, second run %.1f ms\n", names[m].c_str(),
                median(first), median(second));
    rows.push_back({{"model", names[m]}, {"anchor_touch_ms", anchor}, {"cold", cold}, {"warm", warm},
                    {"first_run_ms", median(first)}, {"second_run_ms", median(second)}});
  }
  return moss::bench::write_json_output(json_path, "compile_bench",
                                        {{"threads", threads}, {"snapshot", snapshot},
                                         {"models", std::move(rows)}})
             ? 0
             : 1;
}
