#include "engine/graph/graph.h"

#include <fmt/format.h>

#include <deque>

namespace moss::engine {

int64_t Node::attr_int(const std::string& key, int64_t def) const {
  const Attribute* a = attr(key);
  return a && a->kind == Attribute::Kind::kInt ? a->i : def;
}

float Node::attr_float(const std::string& key, float def) const {
  const Attribute* a = attr(key);
  if (!a) return def;
  if (a->kind == Attribute::Kind::kFloat) return a->f;
  if (a->kind == Attribute::Kind::kInt) return static_cast<float>(a->i);
  return def;
}

std::string Node::attr_string(const std::string& key, const std::string& def) const {
  const Attribute* a = attr(key);
  return a && a->kind == Attribute::Kind::kString ? a->s : def;
}

std::vector<int64_t> Node::attr_ints(const std::string& key) const {
  const Attribute* a = attr(key);
  if (!a) return {};
  if (a->kind == Attribute::Kind::kInts) return a->ints;
  if (a->kind == Attribute::Kind::kInt) return {a->i};
  return {};
}

const Graph* Node::attr_graph(const std::string& key) const {
  const Attribute* a = attr(key);
  return a && a->kind == Attribute::Kind::kGraph ? a->g.get() : nullptr;
}

std::string Node::label() const { return fmt::format("node '{}' ({})", name, op_type); }

int Graph::add_value(std::string name) {
  int id = static_cast<int>(values.size());
  if (!name.empty()) by_name_[name] = id;
  Value v;
  v.name = std::move(name);
  values.push_back(std::move(v));
  return id;
}

int Graph::find_value(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? -1 : it->second;
}

void Graph::index_producers() {
  for (auto& v : values) v.producer = -1;
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int o : nodes[n].outputs) {
      if (o != kNoValue) values[o].producer = static_cast<int>(n);
    }
  }
}

Status Graph::validate() const {
  const int nv = static_cast<int>(values.size());
  std::vector<int> producers(values.size(), 0);
  for (const Node& node : nodes) {
    for (int i : node.inputs) {
      if (i != kNoValue && (i < 0 || i >= nv)) {
        return invalid_argument("{}: input id out of range", node.label());
      }
    }
    for (int o : node.outputs) {
      if (o == kNoValue) continue;
      if (o < 0 || o >= nv) return invalid_argument("{}: output id out of range", node.label());
      if (values[o].constant) {
        return invalid_argument("{}: output '{}' redefines an initializer", node.label(),
                                values[o].name);
      }
      if (++producers[o] > 1) {
        return invalid_argument("{}: output '{}' is produced twice", node.label(), values[o].name);
      }
    }
  }
  for (int in : inputs) {
    if (producers[in] > 0) {
      return invalid_argument("graph input '{}' is also produced by a node", values[in].name);
    }
  }
  for (int out : outputs) {
    if (out < 0 || out >= nv) return invalid_argument("graph output id out of range");
    bool is_input = false;
    for (int in : inputs) is_input |= in == out;
    for (int in : captures) is_input |= in == out;
    if (producers[out] == 0 && !values[out].constant && !is_input) {
      return invalid_argument("graph output '{}' is never produced", values[out].name);
    }
  }
  return Status::Ok();
}

Status Graph::topo_sort() {
  MOSS_RETURN_IF_ERROR(validate());
  index_producers();
  const size_t n = nodes.size();
  std::vector<bool> defined(values.size(), false);
  for (int in : inputs) defined[in] = true;
  for (int in : captures) defined[in] = true;
  for (size_t v = 0; v < values.size(); ++v) {
    if (values[v].constant) defined[v] = true;
  }
  // Kahn's algorithm over node dependencies; stable (keeps file order among ready nodes).
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (size_t i = 0; i < n; ++i) {
    for (int in : nodes[i].inputs) {
      if (in == kNoValue || defined[in]) continue;
      int p = values[in].producer;
      if (p < 0) {
        return invalid_argument("{}: input '{}' is not defined by any node, input or initializer",
                                nodes[i].label(), values[in].name);
      }
      ++pending[i];
      users[p].push_back(static_cast<int>(i));
    }
  }
  std::deque<int> ready;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.push_back(static_cast<int>(i));
  }
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    int i = ready.front();
    ready.pop_front();
    order.push_back(i);
    for (int u : users[i]) {
      if (--pending[u] == 0) ready.push_back(u);
    }
  }
  if (order.size() != n) {
    for (size_t i = 0; i < n; ++i) {
      if (pending[i] > 0) return invalid_argument("graph has a cycle through {}", nodes[i].label());
    }
  }
  std::vector<Node> sorted;
  sorted.reserve(n);
  for (int i : order) sorted.push_back(std::move(nodes[i]));
  nodes = std::move(sorted);
  index_producers();
  return Status::Ok();
}

}  // namespace moss::engine
