#include "engine/passes/passes.h"

namespace moss::engine {

Status remove_dead_nodes(Graph& g) {
  std::vector<bool> live(g.values.size(), false);
  for (int o : g.outputs) live[o] = true;
  std::vector<bool> keep(g.nodes.size(), false);
  for (size_t n = g.nodes.size(); n-- > 0;) {
    const Node& node = g.nodes[n];
    for (int o : node.outputs) {
      if (o != kNoValue && live[o]) keep[n] = true;
    }
    if (!keep[n]) continue;
    for (int in : node.inputs) {
      if (in != kNoValue) live[in] = true;
    }
  }
  std::vector<Node> kept;
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    if (keep[n]) kept.push_back(std::move(g.nodes[n]));
  }
  g.nodes = std::move(kept);
  // Drop constants nobody reads any more (folded intermediates, unused initializers).
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (!live[v] && g.values[v].constant) g.values[v].constant.reset();
  }
  g.index_producers();
  return Status::Ok();
}

}  // namespace moss::engine
