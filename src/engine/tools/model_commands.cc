#include "engine/tools/model_commands.h"

#include "common/file_util.h"
#include "common/npy.h"
#include "common/percentile.h"
#include "common/tensor_file.h"
#include "engine/kernels/registry.h"
#include "engine/runtime/execution_context.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>

namespace moss::engine {
namespace {

constexpr size_t kMaxModelFileBytes = size_t{2} << 30;

std::string dims_string(const IoInfo& io) {
  if (!io.has_shape) return "[?]";
  std::string s = "[";
  for (size_t i = 0; i < io.dims.size(); ++i) {
    if (i) s += ", ";
    s += io.dims[i] >= 0 ? std::to_string(io.dims[i]) : (io.dim_params[i].empty() ? "?" : io.dim_params[i]);
  }
  return s + "]";
}

// "float32", or "seq(tensor(float32))" for a value the engine refuses as a model input/output.
std::string type_text(const IoInfo& io) {
  return io.object_type ? type_name(*io.object_type) : std::string(dtype_name(io.dtype));
}

IoInfo io_of(const Graph& g, int v) {
  IoInfo io;
  io.name = g.values[v].name;
  if (g.values[v].type) {
    if (!g.values[v].type->is_plain()) io.object_type = *g.values[v].type;
    io.dtype = g.values[v].type->dtype;
    io.has_shape = g.values[v].type->has_shape;
    for (const Dim& d : g.values[v].type->dims) {
      io.dims.push_back(d.value);
      io.dim_params.push_back(d.param);
    }
  }
  return io;
}

double peak_rss_mb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// Token-id range for an integer input: the row count of a constant Gather table it indexes.
int64_t vocab_for(const Graph& g, int input) {
  for (const Node& n : g.nodes) {
    if (n.op_type == "Gather" && n.inputs.size() == 2 && n.inputs[1] == input &&
        g.values[n.inputs[0]].constant) {
      const auto& shape = g.values[n.inputs[0]].constant->shape();
      int64_t axis = n.attr_int("axis", 0);
      if (axis < 0) axis += static_cast<int64_t>(shape.size());
      if (axis >= 0 && axis < static_cast<int64_t>(shape.size())) return std::max<int64_t>(1, shape[axis]);
    }
  }
  return 2;
}

Result<Tensor> synthetic_input(const CompiledModel& m, size_t i, const BenchOptions& o) {
  const IoInfo& io = m.inputs()[i];
  std::vector<int64_t> shape;
  for (size_t d = 0; d < io.dims.size(); ++d) {
    shape.push_back(io.dims[d] >= 0 ? io.dims[d] : (d == 0 ? o.batch : o.sequence));
  }
  MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(io.dtype, shape));
  std::mt19937 rng(1234 + static_cast<unsigned>(i));
  switch (io.dtype) {
    case DType::kFloat32: {
      std::uniform_real_distribution<float> u(-1.0f, 1.0f);
      for (int64_t k = 0; k < t.numel(); ++k) t.data<float>()[k] = u(rng);
      break;
    }
    case DType::kInt64:
    case DType::kInt32: {
      const int64_t vocab = vocab_for(m.graph(), m.graph().inputs[i]);
      std::uniform_int_distribution<int64_t> u(0, vocab - 1);
      for (int64_t k = 0; k < t.numel(); ++k) {
        const int64_t v = vocab > 2 ? u(rng) : 1;  // masks and type ids: 1 is valid
        if (io.dtype == DType::kInt64) t.data<int64_t>()[k] = v;
        else t.data<int32_t>()[k] = static_cast<int32_t>(v);
      }
      break;
    }
    case DType::kBool:
      for (int64_t k = 0; k < t.numel(); ++k) t.data<bool>()[k] = true;
      break;
    default:
      return unimplemented("input '{}' has unsupported type {}", io.name, dtype_name(io.dtype));
  }
  return t;
}

std::string safe_file_name(const std::string& name) {
  std::string s = name.empty() ? "output" : name;
  for (char& c : s) {
    if (c == '/' || c == '\\' || c == '\0') c = '_';
  }
  if (s == "." || s == "..") s.assign(1, '_');  // (not = "_": GCC 12 -Wrestrict false positive)
  return s;
}

// Mean time per run by operator label (fused nodes show their fused ops), then the 10 slowest
// steps. Step labels come from the plan, so fusions and layout reorders are visible; the tail's
// nodes (data-dependent shapes, run one by one after the static steps) are marked [tail].
void print_profile(const CompiledModel& m, const Plan& plan, const std::vector<double>& step_ns,
                   const std::vector<double>& tail_ns, int iters, std::ostream& out) {
  std::map<std::string, std::pair<double, int>> by_op;
  std::vector<std::pair<double, std::string>> steps;
  double total = 0, tail_total = 0;
  auto add = [&](const Node& n, std::string op, double ns) {
    const double ms = ns / 1e6 / iters;
    by_op[op].first += ms;
    ++by_op[op].second;
    steps.emplace_back(ms, n.name + " " + op);
    total += ms;
  };
  auto op_name = [](const Node& n) { return n.domain.empty() ? n.op_type : n.domain + "." + n.op_type; };
  for (size_t s = 0; s < step_ns.size() && s < plan.steps.size(); ++s) {
    const Node& n = m.graph().nodes[plan.steps[s]];
    std::string op = op_name(n);
    if (s < plan.step_labels.size() && !plan.step_labels[s].empty()) {
      op = plan.step_labels[s] == "Reorder" ? "Reorder" : op + "+" + plan.step_labels[s];
    }
    add(n, op + (plan.prepared[s] ? " [onednn]" : " [ref]"), step_ns[s]);
  }
  for (size_t t = 0; t < tail_ns.size() && t < plan.tail.size(); ++t) {
    const Node& n = m.graph().nodes[plan.tail[t]];
    add(n, op_name(n) + " [tail]", tail_ns[t]);
    tail_total += tail_ns[t] / 1e6 / iters;
  }
  std::vector<std::pair<double, std::string>> ops;
  for (const auto& [op, v] : by_op) ops.emplace_back(v.first, fmt::format("{} x{}", op, v.second));
  std::sort(ops.rbegin(), ops.rend());
  std::sort(steps.rbegin(), steps.rend());
  out << fmt::format("profile: {} steps and {} tail nodes, {:.3f} ms per run (sum; tail {:.3f} ms)\n",
                     std::min(step_ns.size(), plan.steps.size()),
                     std::min(tail_ns.size(), plan.tail.size()), total, tail_total);
  for (const auto& [ms, op] : ops) out << fmt::format("  {:8.3f} ms {:5.1f}%  {}\n", ms, 100 * ms / total, op);
  out << "slowest steps:\n";
  for (size_t i = 0; i < steps.size() && i < 10; ++i) {
    out << fmt::format("  {:8.3f} ms  {}\n", steps[i].first, steps[i].second);
  }
}

Result<std::vector<NamedTensor>> read_inputs(
    const std::vector<std::pair<std::string, std::filesystem::path>>& inputs) {
  std::vector<NamedTensor> tensors;
  for (const auto& [name, path] : inputs) {
    auto t = read_tensor_file(path);
    if (!t.ok()) return t.status().with_context(fmt::format("input '{}'", name));
    tensors.push_back(NamedTensor{name, std::move(t).value()});
  }
  return tensors;
}

// RunOptions::split_batch: slice i of every input (dimension 0 kept, as 1) is request i; the
// outputs of the requests are stacked along dimension 0.
Result<std::vector<NamedTensor>> run_split(ExecutionContext& ctx,
                                           const std::vector<NamedTensor>& stacked) {
  int64_t n = -1;
  for (const NamedTensor& t : stacked) {
    if (t.tensor.rank() == 0 || (n >= 0 && t.tensor.shape()[0] != n)) {
      return invalid_argument("--split-batch: input '{}' ({}) is not N requests stacked like the "
                              "others", t.name, shape_to_string(t.tensor.shape()));
    }
    n = t.tensor.shape()[0];
  }
  if (n <= 0) return invalid_argument("--split-batch: no requests in the inputs");
  std::vector<NamedTensor> stacked_out;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<NamedTensor> one;
    for (const NamedTensor& t : stacked) {
      std::vector<int64_t> shape = t.tensor.shape();
      shape[0] = 1;
      const size_t part = t.tensor.nbytes() / static_cast<size_t>(n);
      MOSS_ASSIGN_OR_RETURN(
          Tensor slice,
          Tensor::from_bytes(t.tensor.dtype(), shape, t.tensor.bytes().subspan(i * part, part)));
      one.push_back(NamedTensor{t.name, std::move(slice)});
    }
    MOSS_ASSIGN_OR_RETURN(auto outs, ctx.run(one));
    if (i == 0) {
      for (const NamedTensor& r : outs) {
        if (r.tensor.rank() == 0) {
          return invalid_argument("--split-batch: output '{}' is a scalar", r.name);
        }
        std::vector<int64_t> shape = r.tensor.shape();
        shape[0] *= n;
        MOSS_ASSIGN_OR_RETURN(Tensor all, Tensor::zeros(r.tensor.dtype(), shape));
        stacked_out.push_back(NamedTensor{r.name, std::move(all)});
      }
    }
    for (size_t k = 0; k < outs.size() && k < stacked_out.size(); ++k) {
      const Tensor& r = outs[k].tensor;
      Tensor& all = stacked_out[k].tensor;
      if (r.nbytes() * static_cast<size_t>(n) != all.nbytes()) {
        return invalid_argument("--split-batch: output '{}' changes shape between requests",
                                outs[k].name);
      }
      std::memcpy(all.raw() + i * r.nbytes(), r.raw(), r.nbytes());
    }
  }
  return stacked_out;
}

// What the engine runs a compiled model in, for `moss model info` (issue 14): the stored weight
// types, and for a model whose inputs have static shapes, how many plan steps compute in each
// precision (int8 kernels and 8-bit inputs; the others by the type they read).
void print_precision(const Graph& file, std::span<const uint8_t> bytes, HalfCompute half_compute,
                     std::ostream& out) {
  std::map<std::string, double> stored;  // the file's initializers and Constants: dtype -> MB
  auto count = [&stored](const Tensor& t) {
    stored[std::string(dtype_name(t.dtype()))] += static_cast<double>(t.nbytes()) / 1048576.0;
  };
  for (const Value& v : file.values) {
    if (v.constant) count(*v.constant);
  }
  for (const Node& n : file.nodes) {
    const Attribute* a = n.op_type == "Constant" && n.domain.empty() ? n.attr("value") : nullptr;
    if (a && a->t) count(*a->t);
  }
  CompileOptions options;
  options.half_compute = half_compute;
  auto compiled = CompiledModel::compile(bytes, options);
  if (!compiled.ok()) {
    out << "precision: not compiled: " << compiled.status().message() << "\n";
    return;
  }
  const CompiledModel& m = **compiled;
  if (const HalfPrecisionReport& h = m.half_precision(); h.stored != DType::kFloat32) {
    out << fmt::format("half precision: {} weights ({:.1f} MB in the file), ", dtype_name(h.stored),
                       static_cast<double>(h.half_bytes) / 1048576.0)
        << (!h.widened ? "run as written on the reference kernels: " + h.kept
            : m.half_plan().compute == HalfCompute::kBFloat16
                ? std::string("convolutions computed in bfloat16 (half_compute=bf16, AVX512-BF16; "
                              "weights packed as bfloat16), the rest in float32")
                : fmt::format("computed in float32 on the oneDNN kernels (weights held in {}, "
                              "widened per use; half_compute=f32{})", dtype_name(h.stored),
                              half_compute == HalfCompute::kBFloat16 ? ": no AVX512-BF16 here"
                                                                     : ""))
        << "\n";
  }
  Binding binding;
  for (const IoInfo& io : m.inputs()) {
    bool fixed = io.has_shape && !io.object_type;
    for (int64_t d : io.dims) fixed &= d >= 0;
    if (!fixed) {
      out << "precision: input '" << io.name << "' has no static shape (planned per request)\n";
      return;
    }
    binding.shapes.push_back(io.dims);
  }
  auto plan = m.plan_for(binding);
  if (!plan.ok()) {
    out << "precision: not planned: " << plan.status().message() << "\n";
    return;
  }
  std::map<std::string, std::map<std::string, int>> steps;  // precision -> op -> count
  for (size_t s = 0; s < (*plan)->steps.size(); ++s) {
    const PreparedKernel* k = (*plan)->prepared[s].get();
    if ((*plan)->step_labels[s] == "Reorder") continue;
    // The kernel's precision when it says (int8 kernels), else the type it reads (an 8-bit
    // MaxPool is int8 too).
    std::string kind(k ? k->kind() : std::string_view());
    const auto& ins = (*plan)->step_inputs[s];
    if (kind.empty() && !ins.empty() && ins[0] != kNoValue) {
      const DType d = (*plan)->info[ins[0]].dtype;
      kind = d == DType::kUInt8 || d == DType::kInt8 ? "int8" : std::string(dtype_name(d));
    }
    ++steps[kind][m.graph().nodes[(*plan)->steps[s]].op_type];
  }
  out << "precision:\n";
  for (const auto& [kind, ops] : steps) {
    int total = 0;
    for (const auto& [op, n] : ops) total += n;
    out << fmt::format("  {:<8} {} steps:", kind, total);
    for (const auto& [op, n] : ops) out << fmt::format(" {} x{}", op, n);
    out << "\n";
  }
  out << "  weights in memory: " << fmt::format("{:.1f} MB", m.weights_bytes() / 1048576.0)
      << " (in the file:";
  for (const auto& [dt, mb] : stored) out << fmt::format(" {} {:.1f} MB", dt, mb);
  out << ")\n";
}

}  // namespace

Result<HalfCompute> parse_half_compute(const std::string& text) {
  if (text == "f32") return HalfCompute::kFloat32;
  if (text == "bf16") return HalfCompute::kBFloat16;
  return invalid_argument("--half-compute '{}': use f32 or bf16", text);
}

Status model_info(const std::filesystem::path& model, std::ostream& out, HalfCompute half_compute) {
  MOSS_ASSIGN_OR_RETURN(auto bytes, read_file(model, kMaxModelFileBytes));
  MOSS_ASSIGN_OR_RETURN(Graph g, load_onnx(bytes));
  out << "model: " << model.string() << "\n";
  for (const auto& [domain, v] : g.opsets) out << "opset: " << (domain.empty() ? "ai.onnx" : domain) << " " << v << "\n";
  out << "inputs:\n";
  for (int v : g.inputs) {
    IoInfo io = io_of(g, v);
    out << "  " << io.name << " " << type_text(io) << " " << dims_string(io) << "\n";
  }
  out << "outputs:\n";
  for (int v : g.outputs) {
    IoInfo io = io_of(g, v);
    out << "  " << io.name << " " << type_text(io) << " " << dims_string(io) << "\n";
  }
  // One line per operator: domain, the opset the model imports for it, count, and whether the
  // engine runs it (the same lookup compile() uses).
  struct OpUse {
    int count = 0;
    int opset = 0;
    bool supported = false;
  };
  std::map<std::pair<std::string, std::string>, OpUse> ops;  // (domain, op) -> use
  int unsupported = 0;
  for (const Node& n : g.nodes) {
    OpUse& u = ops[{n.domain.empty() ? "ai.onnx" : n.domain, n.op_type}];
    if (u.count++ == 0) {
      u.opset = n.opset;
      u.supported = find_kernel(n) != nullptr;
      unsupported += u.supported ? 0 : 1;
    }
  }
  out << "operators:\n";
  for (const auto& [key, u] : ops) {
    out << fmt::format("  {:<28} {:<10} opset {:<3} x{:<5} {}\n", key.second, key.first, u.opset,
                       u.count, u.supported ? "supported" : "UNSUPPORTED");
  }
  out << "unsupported:";
  if (unsupported == 0) out << " none";
  for (const auto& [key, u] : ops) {
    if (!u.supported) out << " " << (key.first == "ai.onnx" ? "" : key.first + ".") << key.second;
  }
  out << "\n";
  if (unsupported == 0) print_precision(g, bytes, half_compute, out);
  return Status::Ok();
}

Status model_run(const std::filesystem::path& model,
                 const std::vector<std::pair<std::string, std::filesystem::path>>& inputs,
                 const std::filesystem::path& output_dir, std::ostream& out,
                 const RunOptions& o) {
  MOSS_ASSIGN_OR_RETURN(auto bytes, read_file(model, kMaxModelFileBytes));
  CompileOptions options;
  options.half_compute = o.half_compute;
  MOSS_ASSIGN_OR_RETURN(auto compiled, CompiledModel::compile(bytes, options));
  MOSS_ASSIGN_OR_RETURN(auto tensors, read_inputs(inputs));
  ExecutionContext ctx(compiled);
  std::vector<NamedTensor> outputs;
  if (o.split_batch) {
    MOSS_ASSIGN_OR_RETURN(outputs, run_split(ctx, tensors));
  } else {
    MOSS_ASSIGN_OR_RETURN(outputs, ctx.run(tensors));
  }
  std::error_code ec;
  std::filesystem::create_directories(output_dir, ec);
  if (ec) return invalid_argument("cannot create {}: {}", output_dir.string(), ec.message());
  for (const NamedTensor& o : outputs) {
    const auto path = output_dir / (safe_file_name(o.name) + ".npy");
    MOSS_RETURN_IF_ERROR(write_npy_file(path, o.tensor));
    out << o.name << " " << dtype_name(o.tensor.dtype()) << " " << shape_to_string(o.tensor.shape())
        << " -> " << path.string() << "\n";
  }
  return Status::Ok();
}

Status model_bench(const std::filesystem::path& model, const BenchOptions& o, std::ostream& out) {
  if (o.threads < 1 || o.threads > 256) return invalid_argument("--threads must be 1..256");
  if (o.iters < 1 || o.iters > 1000000) return invalid_argument("--iters must be 1..1000000");
  MOSS_ASSIGN_OR_RETURN(auto bytes, read_file(model, kMaxModelFileBytes));
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  CompileOptions copts;
  copts.intra_op_threads = o.threads;
  copts.half_compute = o.half_compute;
  MOSS_ASSIGN_OR_RETURN(auto compiled, CompiledModel::compile(bytes, copts));
  const double compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  MOSS_ASSIGN_OR_RETURN(auto given, read_inputs(o.inputs));
  std::vector<NamedTensor> inputs;
  for (size_t i = 0; i < compiled->inputs().size(); ++i) {
    const std::string& name = compiled->inputs()[i].name;
    auto it = std::find_if(given.begin(), given.end(), [&](const NamedTensor& g) { return g.name == name; });
    if (it != given.end()) {
      inputs.push_back(std::move(*it));
      given.erase(it);
      continue;
    }
    MOSS_ASSIGN_OR_RETURN(Tensor t, synthetic_input(*compiled, i, o));
    inputs.push_back(NamedTensor{name, std::move(t)});
  }
  if (!given.empty()) return invalid_argument("--input '{}': the model has no such input", given[0].name);
  ExecutionContext ctx(compiled);
  for (int i = 0; i < o.warmup; ++i) MOSS_RETURN_IF_ERROR(ctx.run(inputs).status());
  std::vector<double> step_ns, tail_ns;
  if (o.profile) {
    ctx.set_step_timer(&step_ns);
    ctx.set_tail_timer(&tail_ns);
  }
  std::vector<double> ms;
  for (int i = 0; i < o.iters; ++i) {
    const auto s = Clock::now();
    MOSS_RETURN_IF_ERROR(ctx.run(inputs).status());
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
  }
  if (o.profile && ctx.plan()) print_profile(*compiled, *ctx.plan(), step_ns, tail_ns, o.iters, out);
  out << "inputs:";
  for (const auto& in : inputs) out << " " << in.name << shape_to_string(in.tensor.shape());
  out << "\n";
  nlohmann::ordered_json j;
  j["model"] = model.filename().string();
  j["threads"] = o.threads;
  j["compile_ms"] = compile_ms;
  const CompileTiming& ct = compiled->compile_timing();
  j["compile_breakdown_ms"] = {{"parse", ct.parse_ms},     {"passes", ct.passes_ms},
                               {"kernels", ct.kernels_ms}, {"pack", ct.pack_ms},
                               {"plan", ct.plan_ms}};
  j["p50_ms"] = percentile_in_place(ms, 0.5);
  j["p90_ms"] = percentile_in_place(ms, 0.9);
  j["weights_mb"] = static_cast<double>(compiled->weights_bytes()) / (1 << 20);
  j["arena_mb"] = static_cast<double>(ctx.arena_bytes()) / (1 << 20);
  j["peak_rss_mb"] = peak_rss_mb();
  out << j.dump() << "\n";
  return Status::Ok();
}

}  // namespace moss::engine
