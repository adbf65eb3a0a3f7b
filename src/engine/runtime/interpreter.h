// Runs nodes one at a time with shapes taken from the actual tensors: the part of a plan that
// follows a data-dependent shape (Plan::tail) and the subgraphs of If, Loop and Scan. Each output
// is a tensor of this run, taken from a BufferPool (a loop body reuses the buffers its earlier
// iterations released); kernels are the reference ones (shapes are only known here).
// One Interpreter per ExecutionContext run; not thread-safe.
#pragma once

#include "engine/graph/graph.h"
#include "engine/kernels/kernel.h"
#include "engine/runtime/buffer_pool.h"

#include <map>
#include <memory>
#include <span>
#include <vector>

namespace moss::engine {

// Per value of one graph: where its data is for this run.
struct Env {
  explicit Env(const Graph& g)
      : views(g.values.size()), owned(g.values.size()), objects(g.values.size()),
        into(g.values.size()), set(g.values.size(), false) {}
  void bind(int v, View view) {
    views[v] = view;
    set[v] = true;
  }
  // A value of any kind: a tensor is stored as a view (owned), anything else in objects.
  void bind_object(int v, ObjectPtr o);
  // Where the node computing graph output i writes it this run (outputs[i], when it has data):
  // a slice of a scan's stacked result, a scan state's next buffer. Not for a value listed as
  // two outputs (each is copied from one buffer instead).
  void set_into(const Graph& g, std::span<const View> outputs);
  // Tensor t of value v as an Object: one of v's two wrappers when nothing else holds it (a loop
  // body's outputs go out once per iteration without a new wrapper), else a new one.
  ObjectPtr wrap(int v, std::shared_ptr<const Tensor> t);
  // Lets the pool reuse the buffers of wrappers nobody else holds any more.
  void release_idle_wrappers();
  // Unbinds every value (releasing what it owns) and keeps the storage for the next run.
  void reset();
  std::vector<View> views;
  std::vector<std::shared_ptr<const Tensor>> owned;  // produced by the interpreter
  std::vector<ObjectPtr> objects;  // non-tensor values (sequences, optionals, strings)
  std::vector<View> into;          // set_into
  std::vector<bool> set;

 private:
  std::vector<int> into_values_;
  std::vector<std::shared_ptr<Object>> wrappers_;  // two per value once one is needed
};

// Value v of env as an Object (a tensor wrapped without a copy when env or the graph owns it).
Result<ObjectPtr> object_of(const Graph& g, Env& env, int v);

// What infer() gave for one node at the input dtypes and shapes it was last called with: a
// subgraph run again with the same shapes (a loop body's steady state) skips infer() and its
// allocations. Only for nodes whose shape-determining inputs (OpKernel::value_inputs) are
// constants or absent; the contents of other inputs do not change shapes (kernel.h).
struct InferCache {
  bool valid = false;
  std::vector<int> dtypes;     // per input, -1 when absent
  std::vector<size_t> ranks;
  std::vector<int64_t> dims;   // every input's dims, concatenated
  std::vector<TensorInfo> out;
};

class Interpreter final : public SubgraphRunner {
 public:
  // Runs nodes (indices into g.nodes, in order); every input must be bound in env, be a
  // constant, or be produced by an earlier node of the list. cache: one entry per node of g, or
  // null.
  Status run_nodes(const Graph& g, std::span<const int> nodes, Env& env,
                   std::vector<InferCache>* cache = nullptr);
  // Profiling: when set, run_nodes adds the wall time (ns) of its i-th node to (*ns)[i] (resized
  // to fit; nodes of subgraphs count in the node that runs them). For `moss model bench --profile`.
  void set_node_timer(std::vector<double>* ns) { node_ns_ = ns; }

  Result<std::vector<Tensor>> run(const Graph& g, std::span<const View> inputs,
                                  std::span<const View> captures) override;
  Status run_into(const Graph& g, std::span<const View> inputs, std::span<const View> captures,
                  std::span<const View> outputs) override;
  Status run_objects(const Graph& g, std::span<const ObjectPtr> inputs,
                     std::span<const ObjectPtr> captures, std::vector<ObjectPtr>& outs,
                     std::span<const View> into = {}) override;
  Result<std::shared_ptr<Tensor>> buffer(DType dtype, std::span<const int64_t> shape) override {
    return pool_.acquire(dtype, shape);
  }
  // Tensor buffers allocated so far for node outputs and loop bookkeeping (reuses not counted;
  // operators with data-dependent outputs allocate their own and are not counted).
  size_t buffers_allocated() const { return pool_.allocations(); }

 private:
  // A subgraph's environment and infer() results, kept from one run of it to the next (a loop
  // body runs once per iteration). A graph never runs inside itself; busy guards it anyway.
  struct Frame {
    explicit Frame(const Graph& g) : env(g), infer(g.nodes.size()) {}
    Env env;
    std::vector<InferCache> infer;
    bool busy = false;
  };
  // Releases the frame's values after a run, keeping its storage.
  struct FrameLease {
    FrameLease(Interpreter& interpreter, const Graph& g);
    FrameLease(const FrameLease&) = delete;
    FrameLease& operator=(const FrameLease&) = delete;
    Frame* frame = nullptr;
    std::unique_ptr<Frame> own;  // a fresh frame when the cached one is busy
    Frame& get() { return own ? *own : *frame; }
    ~FrameLease() {
      if (frame) {
        frame->env.reset();
        frame->busy = false;
      }
    }
  };
  // run_nodes' working vectors, one set per subgraph depth (kept across nodes and runs).
  struct Scratch {
    std::vector<View> in, out;
    std::vector<TensorInfo> infos, inferred;
    std::vector<const TensorInfo*> ptrs;
    std::vector<std::shared_ptr<const Tensor>> results;
    std::vector<int> all;
  };
  Scratch& scratch();

  Status run_all(const Graph& g, Env& env, std::vector<InferCache>* cache);
  // Binds a run()/run_into() call's tensor inputs and captures, checking declared types.
  static Status bind_views(const Graph& g, Env& env, std::span<const View> inputs,
                           std::span<const View> captures);
  Status run_object_node(const Graph& g, const Node& node, const OpKernel& k, Env& env);

  std::map<const Graph*, std::unique_ptr<Frame>> frames_;
  std::vector<std::unique_ptr<Scratch>> scratch_;
  int depth_ = 0;
  std::vector<double>* node_ns_ = nullptr;
  BufferPool pool_;
};

}  // namespace moss::engine
