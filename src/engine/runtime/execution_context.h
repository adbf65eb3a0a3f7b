// ExecutionContext: the per-request state. It owns only its arena (activations, sized by the plan
// for the current input shapes) and refers to an immutable CompiledModel. Not thread-safe: use one
// per concurrent request; any number of contexts may run on one model at once, and their results
// are bit-identical to serial runs because every kernel is deterministic.
#pragma once

#include "common/status.h"
#include "common/tensor.h"
#include "common/tensor_bundle.h"
#include "engine/runtime/compiled_model.h"

#include <memory>
#include <span>
#include <vector>

namespace moss::engine {

// A model input or output of any kind (run_objects).
struct NamedObject {
  std::string name;
  ObjectPtr value;
};

class ExecutionContext {
 public:
  explicit ExecutionContext(std::shared_ptr<const CompiledModel> model);
  ~ExecutionContext();

  // Binds input shapes (ordered like model.inputs()) and allocates the arena ahead of the first
  // run. Optional: run() binds on demand when shapes change. Fails for models with value-bound
  // inputs (their plan also depends on contents; run() handles those).
  Status bind(const std::vector<std::vector<int64_t>>& input_shapes);
  Status bind(const Binding& binding);

  // Runs with inputs matched by name (every model input exactly once); returns the model's
  // outputs in declaration order.
  Result<std::vector<NamedTensor>> run(std::span<const NamedTensor> inputs);
  // The same for a model compiled with allow_non_tensor_io: inputs and outputs of any kind
  // (graph/object.h). Not for the worker: strings and sequences have no tensor bundle form.
  Result<std::vector<NamedObject>> run_objects(std::span<const NamedObject> inputs);

  // Bytes of the arena for the currently bound shapes (0 before the first bind).
  size_t arena_bytes() const { return plan_ ? plan_->arena_bytes : 0; }
  const CompiledModel& model() const { return *model_; }
  // The plan of the current binding (null before the first bind), e.g. to name profiled steps.
  const Plan* plan() const { return plan_.get(); }

  // Tensor buffers the last run allocated in the plan's tail and in subgraph bodies (runtime/
  // buffer_pool.h: a buffer reused for a later value is counted once). A Loop whose body keeps its
  // shapes allocates the same number for 3 iterations as for 300. For tests and profiling.
  size_t tail_buffer_allocations() const { return tail_buffers_; }

  // Profiling: when set, run() adds each step's wall time (ns) to (*ns)[step] (resized to the
  // plan's step count). Null turns it off. For `moss model bench --profile`.
  void set_step_timer(std::vector<double>* ns) { step_ns_ = ns; }
  // The same for the plan's tail (data-dependent nodes run one by one): (*ns)[i] for tail[i].
  void set_tail_timer(std::vector<double>* ns) { tail_ns_ = ns; }

 private:
  // object_in: per model input, the value of an input of non-tensor type (or empty);
  // object_out: when set, receives per model output the non-tensor value (the tensor list then
  // holds an empty tensor at its place).
  Result<std::vector<NamedTensor>> run_impl(std::span<const NamedTensor> inputs,
                                            std::span<const ObjectPtr> object_in,
                                            std::vector<ObjectPtr>* object_out);
  uint8_t* arena() { return reinterpret_cast<uint8_t*>(arena_.get()); }

  std::shared_ptr<const CompiledModel> model_;
  std::shared_ptr<const Plan> plan_;
  struct alignas(kArenaAlignment) Block {
    uint8_t bytes[kArenaAlignment];
  };
  std::unique_ptr<Block[]> arena_;
  size_t arena_capacity_ = 0;
  std::vector<View> in_views_, out_views_;
  std::unique_ptr<onednn::OnednnScratch> dnnl_scratch_;
  RunScratch scratch_;
  std::vector<double>* step_ns_ = nullptr;
  std::vector<double>* tail_ns_ = nullptr;
  size_t tail_buffers_ = 0;
};

}  // namespace moss::engine
