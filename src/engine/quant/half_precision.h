// float16 / bfloat16 models on the float32 kernels, at compile time. A model stored in half
// precision (weights and the activations between its Casts; converters keep the inputs and
// outputs float32) would otherwise run every operator on the reference kernels, widening to
// float and rounding back per element. compute_half_in_float32 retypes the graph to float32: half
// constants are widened once, Cast(to=float16/bfloat16) becomes Cast(to=float32) and
// ConstantOfShape/Constant half values are widened, so Conv, MatMul and the fusions run on oneDNN
// in float32. The results are the float32 model's with half-rounded weights (closer to the
// exact values than half arithmetic; rtol 1e-2 against ONNX Runtime's float16 run).
//
// Half graph inputs and outputs keep their type (a Cast at each edge). Not applied (reported, the
// graph left as written) when the model holds no half weights, a node has a subgraph, or a node
// other than Cast/Constant/ConstantOfShape carries a type or tensor attribute (its output type
// would stay half).
#pragma once

#include <string>

#include "common/status.h"
#include "engine/graph/graph.h"

namespace moss::engine {

// How the oneDNN float kernels of a widened half model hold and compute its weights (Plan::half).
// weights: kFloat16/kBFloat16 for a half model (held in that type), kFloat32 otherwise. compute:
// kBFloat16 (CompileOptions::half_compute, granted only where the CPU has AVX512-BF16) runs the
// convolutions in bfloat16, their weights packed once as bf16; kFloat32 widens the half weights
// to float32 per use.
enum class HalfCompute { kFloat32, kBFloat16 };
struct HalfPlan {
  DType weights = DType::kFloat32;
  HalfCompute compute = HalfCompute::kFloat32;
};

struct HalfPrecisionReport {
  DType stored = DType::kFloat32;  // kFloat16 / kBFloat16: the model's half type (first seen)
  int64_t half_bytes = 0;          // bytes of half constants in the graph
  bool widened = false;            // computed in float32 by the pass
  std::string kept;                // why a half model was left as written (empty otherwise)
};

Result<HalfPrecisionReport> compute_half_in_float32(Graph& g);

}  // namespace moss::engine
