// Runs nodes one at a time with shapes taken from the actual tensors: the part of a plan that
// follows a data-dependent shape (Plan::tail) and the subgraphs of If, Loop and Scan. Each output
// is a tensor allocated for this run; kernels are the reference ones (shapes are only known here).
// One Interpreter per ExecutionContext run; not thread-safe.
#pragma once

#include "engine/graph/graph.h"
#include "engine/kernels/kernel.h"

#include <memory>
#include <span>
#include <vector>

namespace moss::engine {

// Per value of one graph: where its data is for this run.
struct Env {
  explicit Env(const Graph& g)
      : views(g.values.size()), owned(g.values.size()), set(g.values.size(), false) {}
  void bind(int v, View view) {
    views[v] = view;
    set[v] = true;
  }
  std::vector<View> views;
  std::vector<std::shared_ptr<const Tensor>> owned;  // produced by the interpreter
  std::vector<bool> set;
};

class Interpreter final : public SubgraphRunner {
 public:
  // Runs nodes (indices into g.nodes, in order); every input must be bound in env, be a
  // constant, or be produced by an earlier node of the list.
  Status run_nodes(const Graph& g, std::span<const int> nodes, Env& env);

  Result<std::vector<Tensor>> run(const Graph& g, std::span<const View> inputs,
                                  std::span<const View> captures) override;

 private:
  int depth_ = 0;
};

}  // namespace moss::engine
