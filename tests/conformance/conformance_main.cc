// ONNX backend conformance driver. For every case directory (model.onnx + test_data_set_*/
// input_N.pb, output_N.pb) compiles the model, runs each data set and compares outputs with
// rtol/atol as ONNX's backend test does. Prints `N passed, N failed, N skipped` and exits non-zero
// on a failure, of a case whose operators are all claimed, not listed in the exceptions file
// (lines: `<glob>  <reason>`).
//   default  cases with an unclaimed operator are skipped (the CTest run: fast, gates regressions)
//   --all    every case runs; an unclaimed operator counts as a failure (the coverage figure)
// Besides ONNX's suites under --root, the suite "cases" is the engine's own data under --cases
// (default: tests/conformance/cases of the source tree; opset 18-21 and contrib operators, made by
// tools/make_conformance_cases.py with ONNX Runtime's outputs).
#include "common/file_util.h"
#include "common/tensor_proto.h"
#include "engine/kernels/registry.h"
#include "engine/runtime/execution_context.h"
#include "engine/runtime/object_proto.h"

#include <fnmatch.h>
#include <onnx/onnx.pb.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <type_traits>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace moss;

namespace {

struct Exception {
  std::string pattern, reason;
  bool used = false;
};

std::vector<Exception> read_exceptions(const std::string& path) {
  std::vector<Exception> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    Exception e;
    ss >> e.pattern;
    std::getline(ss, e.reason);
    if (!e.pattern.empty()) out.push_back(e);
  }
  return out;
}

std::vector<uint8_t> read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// Whether the engine claims every operator of the model (ai.onnx domain only).
bool claimed(const std::vector<uint8_t>& bytes, std::string& missing) {
  onnx::ModelProto m;
  if (!m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return true;  // loader must reject
  for (const auto& n : m.graph().node()) {
    engine::Node probe;
    probe.op_type = n.op_type();
    probe.domain = n.domain() == "ai.onnx" ? "" : n.domain();
    if (!engine::find_kernel(probe)) {
      missing = n.domain().empty() ? n.op_type() : n.domain() + "." + n.op_type();
      return false;
    }
  }
  return true;
}

template <typename T>
std::string compare_values(const Tensor& got, const Tensor& want, double rtol, double atol) {
  const T* g = got.data<T>();
  const T* w = want.data<T>();
  for (int64_t i = 0; i < got.numel(); ++i) {
    double a, b;
    if constexpr (std::is_same_v<T, double>) {
      a = g[i];
      b = w[i];
    } else {
      a = static_cast<float>(g[i]);
      b = static_cast<float>(w[i]);
    }
    if (std::isnan(b) && std::isnan(a)) continue;
    if (std::isinf(b) && a == b) continue;
    if (!(std::fabs(a - b) <= atol + rtol * std::fabs(b))) {
      std::ostringstream os;
      os << "element " << i << ": got " << a << ", want " << b;
      return os.str();
    }
  }
  return "";
}

template <typename T>
std::string compare_exact(const Tensor& got, const Tensor& want) {
  const T* g = got.data<T>();
  const T* w = want.data<T>();
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (g[i] != w[i]) {
      return "element " + std::to_string(i) + ": got " + std::to_string(g[i]) + ", want " +
             std::to_string(w[i]);
    }
  }
  return "";
}

std::string compare(const Tensor& got, const Tensor& want, double rtol, double atol) {
  if (got.dtype() != want.dtype()) {
    return std::string("dtype ") + std::string(dtype_name(got.dtype())) + " vs " +
           std::string(dtype_name(want.dtype()));
  }
  if (got.shape() != want.shape()) {
    return "shape " + shape_to_string(got.shape()) + " vs " + shape_to_string(want.shape());
  }
  switch (got.dtype()) {
    case DType::kFloat32: return compare_values<float>(got, want, rtol, atol);
    case DType::kFloat64: return compare_values<double>(got, want, rtol, atol);
    case DType::kFloat16: return compare_values<Float16>(got, want, rtol, atol);
    case DType::kBFloat16: return compare_values<BFloat16>(got, want, rtol, atol);
    case DType::kUInt8: return compare_exact<uint8_t>(got, want);
    case DType::kInt8: return compare_exact<int8_t>(got, want);
    case DType::kInt32: return compare_exact<int32_t>(got, want);
    case DType::kInt64: return compare_exact<int64_t>(got, want);
    default: return got.equals(want) ? "" : "bytes differ";
  }
}

// Sequences, optionals and string tensors (engine/graph/object.h): kinds, lengths and elements.
std::string compare_objects(const engine::Object& got, const engine::Object& want) {
  using K = engine::Object::Kind;
  if (got.kind != want.kind) {
    return "kind " + engine::type_name(engine::type_of(got)) + " vs " +
           engine::type_name(engine::type_of(want));
  }
  switch (got.kind) {
    case K::kTensor: return compare(*got.tensor, *want.tensor, 1e-3, 1e-7);
    case K::kStrings:
      if (got.strings->shape != want.strings->shape) {
        return "shape " + shape_to_string(got.strings->shape) + " vs " +
               shape_to_string(want.strings->shape);
      }
      for (size_t i = 0; i < got.strings->data.size(); ++i) {
        if (got.strings->data[i] != want.strings->data[i]) {
          return "string " + std::to_string(i) + ": got '" + got.strings->data[i] + "', want '" +
                 want.strings->data[i] + "'";
        }
      }
      return "";
    default:
      if (got.items.size() != want.items.size()) {
        return std::to_string(got.items.size()) + " elements vs " + std::to_string(want.items.size());
      }
      for (size_t i = 0; i < got.items.size(); ++i) {
        std::string d = compare_objects(*got.items[i], *want.items[i]);
        if (!d.empty()) return "element " + std::to_string(i) + ": " + d;
      }
      return "";
  }
}

// A case whose inputs or outputs are sequences, optionals or strings: run through run_objects.
std::string run_object_case(const engine::CompiledModel& model, engine::ExecutionContext& ctx,
                            const fs::path& set) {
  std::vector<engine::NamedObject> inputs;
  const auto& decl = model.inputs();
  for (size_t i = 0;; ++i) {
    fs::path p = set / ("input_" + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    if (i >= decl.size()) return "more input files than model inputs";
    engine::TensorType type;
    type.dtype = decl[i].dtype;
    if (decl[i].object_type) type = *decl[i].object_type;
    auto o = engine::read_object_proto(read_all(p), type);
    if (!o.ok()) return "input: " + o.status().message();
    inputs.push_back(engine::NamedObject{decl[i].name, o->value});
  }
  auto outs = ctx.run_objects(inputs);
  if (!outs.ok()) return "run: " + outs.status().message();
  for (size_t i = 0;; ++i) {
    fs::path p = set / ("output_" + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    if (i >= outs->size()) return "missing output " + std::to_string(i);
    engine::TensorType type;
    type.dtype = model.outputs()[i].dtype;
    if (model.outputs()[i].object_type) type = *model.outputs()[i].object_type;
    auto want = engine::read_object_proto(read_all(p), type);
    if (!want.ok()) return "expected output: " + want.status().message();
    std::string diff = compare_objects(*(*outs)[i].value, *want->value);
    if (!diff.empty()) return "output " + std::to_string(i) + " (" + (*outs)[i].name + "): " + diff;
  }
  return "";
}

// Runs one case; returns "" on success or a one-line reason.
std::string run_case(const fs::path& dir, const std::vector<uint8_t>& bytes) {
  engine::CompileOptions options;
  options.allow_non_tensor_io = true;
  auto model = engine::CompiledModel::compile(bytes, options);
  if (!model.ok()) return "compile: " + model.status().message();
  bool objects = false;
  for (const auto& io : (*model)->inputs()) objects |= io.object_type.has_value();
  for (const auto& io : (*model)->outputs()) objects |= io.object_type.has_value();
  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
  }
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return "no test data";
  engine::ExecutionContext ctx(*model);
  for (const auto& set : sets) {
    if (objects) {
      std::string err = run_object_case(**model, ctx, set);
      if (!err.empty()) return err;
      continue;
    }
    std::vector<NamedTensor> inputs;
    const auto& decl = (*model)->inputs();
    for (size_t i = 0;; ++i) {
      fs::path p = set / ("input_" + std::to_string(i) + ".pb");
      if (!fs::exists(p)) break;
      auto t = read_tensor_proto_file(p);
      if (!t.ok()) return "input: " + t.status().message();
      NamedTensor nt = std::move(t).value();
      // Data files may carry the graph input name or none; inputs are positional otherwise.
      bool known = false;
      for (const auto& d : decl) known |= d.name == nt.name;
      if (!known) {
        if (i >= decl.size()) return "more input files than model inputs";
        nt.name = decl[i].name;
      }
      // Older ONNX test data stores bfloat16 tensors with data_type UINT16.
      for (const auto& d : decl) {
        if (d.name == nt.name && d.dtype == DType::kBFloat16 && nt.tensor.dtype() == DType::kUInt16) {
          nt.tensor = Tensor::from_bytes(DType::kBFloat16, nt.tensor.shape(), nt.tensor.bytes()).value_or_die();
        }
      }
      inputs.push_back(std::move(nt));
    }
    auto outs = ctx.run(inputs);
    if (!outs.ok()) return "run: " + outs.status().message();
    for (size_t i = 0;; ++i) {
      fs::path p = set / ("output_" + std::to_string(i) + ".pb");
      if (!fs::exists(p)) break;
      auto want = read_tensor_proto_file(p);
      if (!want.ok()) return "expected output: " + want.status().message();
      if (i >= outs->size()) return "missing output " + std::to_string(i);
      if (want->tensor.dtype() == DType::kUInt16 && (*outs)[i].tensor.dtype() == DType::kBFloat16) {
        want->tensor = Tensor::from_bytes(DType::kBFloat16, want->tensor.shape(), want->tensor.bytes()).value_or_die();
      }
      std::string diff = compare((*outs)[i].tensor, want->tensor, 1e-3, 1e-7);
      if (!diff.empty()) return "output " + std::to_string(i) + " (" + (*outs)[i].name + "): " + diff;
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = "/usr/share/libonnx-testdata/data";
  std::string cases_root = MOSS_CONFORMANCE_CASES;
  std::string exceptions_path;
  bool verbose = false;
  bool all = false;
  int unclaimed = 0;
  std::string filter = "*";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--exceptions" && i + 1 < argc) exceptions_path = argv[++i];
    else if (a == "--root" && i + 1 < argc) root = argv[++i];
    else if (a == "--cases" && i + 1 < argc) cases_root = argv[++i];
    else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
    else if (a == "-v") verbose = true;
    else if (a == "--all") all = true;
  }
  auto exceptions = read_exceptions(exceptions_path);
  int passed = 0, failed = 0, skipped = 0, excepted = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (const char* suite : {"node", "simple", "pytorch-converted", "pytorch-operator", "cases"}) {
    fs::path sdir = std::string(suite) == "cases" ? fs::path(cases_root) : fs::path(root) / suite;
    if (!fs::exists(sdir)) continue;
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(sdir)) {
      if (e.is_directory() && fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
    }
    std::sort(cases.begin(), cases.end());
    for (const auto& dir : cases) {
      const std::string name = std::string(suite) + "/" + dir.filename().string();
      if (fnmatch(filter.c_str(), name.c_str(), 0) != 0) continue;
      auto bytes = read_all(dir / "model.onnx");
      std::string missing;
      if (!claimed(bytes, missing)) {
        if (all) {
          ++failed;
          ++unclaimed;
          if (verbose) std::printf("FAIL %s: unsupported operator %s\n", name.c_str(), missing.c_str());
        } else {
          ++skipped;
          if (verbose) std::printf("SKIP %s (%s)\n", name.c_str(), missing.c_str());
        }
        continue;
      }
      std::string err = run_case(dir, bytes);
      Exception* ex = nullptr;
      for (auto& e : exceptions) {
        if (fnmatch(e.pattern.c_str(), name.c_str(), 0) == 0) ex = &e;
      }
      if (err.empty()) {
        ++passed;
        if (ex) std::printf("UNEXPECTED PASS %s (listed: %s)\n", name.c_str(), ex->reason.c_str());
      } else if (ex) {
        ex->used = true;
        ++excepted;
        if (verbose) std::printf("EXCEPTION %s: %s\n", name.c_str(), err.c_str());
      } else {
        ++failed;
        std::printf("FAIL %s: %s\n", name.c_str(), err.c_str());
      }
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (all) {
    // Every case counts: documented exceptions are failures here.
    std::printf("%d passed, %d failed, %d skipped (of the failures: %d unsupported operator, %d "
                "documented exceptions) in %.1f s\n",
                passed, failed + excepted, skipped, unclaimed, excepted, secs);
    return failed - unclaimed == 0 ? 0 : 1;
  }
  std::printf("%d passed, %d failed, %d skipped (%d documented exceptions not counted) in %.1f s\n",
              passed, failed, skipped, excepted, secs);
  return failed == 0 ? 0 : 1;
}
