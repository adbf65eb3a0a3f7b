// Einsum: explicit ("ij,jk->ik") and implicit ("ij,jk") equations, ellipsis broadcasting, repeated
// labels (diagonals). Reference: one loop over every combination of label values (output labels
// outer, summed labels inner), accumulating in double. Numeric types.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <map>

namespace moss::engine::ref {
namespace {

// Labels are letters; ellipsis dims become labels 0..k-1 (k = broadcast rank), letters 'A'.. after.
struct Equation {
  std::vector<std::vector<int>> inputs;  // label per input dim
  std::vector<int> output;
  std::vector<int64_t> size;  // per label id
  int labels = 0;
};

Result<Equation> parse(const Node& node, std::span<const TensorInfo* const> in) {
  std::string eq = node.attr_string("equation", "");
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t p = 0;;) {
    const size_t c = lhs.find(',', p);
    terms.push_back(lhs.substr(p, c == std::string::npos ? std::string::npos : c - p));
    if (c == std::string::npos) break;
    p = c + 1;
  }
  if (terms.size() != in.size()) {
    return invalid_argument("{}: equation '{}' has {} operands, got {} inputs", node.label(), eq, terms.size(), in.size());
  }
  // Broadcast rank of the ellipsis: the largest over the inputs.
  int64_t ell = 0;
  for (size_t i = 0; i < terms.size(); ++i) {
    const size_t dots = terms[i].find("...");
    const int64_t letters = static_cast<int64_t>(terms[i].size()) - (dots == std::string::npos ? 0 : 3);
    const int64_t rank = static_cast<int64_t>(in[i]->shape.size());
    if (dots == std::string::npos ? rank != letters : rank < letters) {
      return invalid_argument("{}: operand {} '{}' does not match its rank {}", node.label(), i, terms[i], rank);
    }
    if (dots != std::string::npos) ell = std::max(ell, rank - letters);
  }
  Equation e;
  e.labels = static_cast<int>(ell) + 52;
  e.size.assign(static_cast<size_t>(e.labels), -1);
  std::vector<int> count(static_cast<size_t>(e.labels), 0);
  auto letter_id = [&](char ch) -> int {
    if (ch >= 'a' && ch <= 'z') return static_cast<int>(ell) + (ch - 'a');
    if (ch >= 'A' && ch <= 'Z') return static_cast<int>(ell) + 26 + (ch - 'A');
    return -1;
  };
  auto bind = [&](int id, int64_t dim) -> Status {
    auto& s = e.size[static_cast<size_t>(id)];
    if (s == -1 || s == 1) s = dim;
    else if (dim != s && dim != 1) return invalid_argument("{}: label sizes {} and {} differ", node.label(), s, dim);
    return Status::Ok();
  };
  for (size_t i = 0; i < terms.size(); ++i) {
    std::vector<int> lab;
    const std::string& t = terms[i];
    const int64_t rank = static_cast<int64_t>(in[i]->shape.size());
    for (size_t p = 0; p < t.size(); ++p) {
      if (t.compare(p, 3, "...") == 0) {
        const int64_t k = rank - (static_cast<int64_t>(t.size()) - 3);
        for (int64_t d = 0; d < k; ++d) lab.push_back(static_cast<int>(ell - k + d));
        p += 2;
        continue;
      }
      const int id = letter_id(t[p]);
      if (id < 0) return invalid_argument("{}: bad character '{}' in equation", node.label(), t[p]);
      lab.push_back(id);
    }
    for (size_t d = 0; d < lab.size(); ++d) {
      MOSS_RETURN_IF_ERROR(bind(lab[d], in[i]->shape[d]));
      ++count[static_cast<size_t>(lab[d])];
    }
    e.inputs.push_back(std::move(lab));
  }
  if (arrow != std::string::npos) {
    const std::string rhs = eq.substr(arrow + 2);
    for (size_t p = 0; p < rhs.size(); ++p) {
      if (rhs.compare(p, 3, "...") == 0) {
        for (int64_t d = 0; d < ell; ++d) e.output.push_back(static_cast<int>(d));
        p += 2;
        continue;
      }
      const int id = letter_id(rhs[p]);
      if (id < 0 || e.size[static_cast<size_t>(id)] < 0) {
        return invalid_argument("{}: output label '{}' is not an input label", node.label(), rhs[p]);
      }
      e.output.push_back(id);
    }
  } else {
    for (int64_t d = 0; d < ell; ++d) e.output.push_back(static_cast<int>(d));
    for (int id = static_cast<int>(ell); id < e.labels; ++id) {
      if (count[static_cast<size_t>(id)] == 1) e.output.push_back(id);
    }
  }
  for (auto& s : e.size) s = s < 0 ? 1 : s;  // unused labels
  return e;
}

Status infer_Einsum(const Node& node, std::span<const TensorInfo* const> in,
                    std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 64));
  MOSS_RETURN_IF_ERROR(require_numeric(node, *in[0], "input 0"));
  for (size_t i = 1; i < in.size(); ++i) MOSS_RETURN_IF_ERROR(require_same_dtype(node, *in[0], *in[i], "an input"));
  MOSS_ASSIGN_OR_RETURN(Equation e, parse(node, in));
  std::vector<int64_t> shape;
  for (int id : e.output) shape.push_back(e.size[static_cast<size_t>(id)]);
  return set_out(out, in[0]->dtype, std::move(shape));
}

Status run_Einsum(const Node& node, std::span<const View> in, std::span<const View> out) {
  std::vector<TensorInfo> infos(in.size());
  std::vector<const TensorInfo*> ptrs;
  for (size_t i = 0; i < in.size(); ++i) {
    infos[i].dtype = in[i].dtype;
    infos[i].shape.assign(in[i].shape.begin(), in[i].shape.end());
    ptrs.push_back(&infos[i]);
  }
  MOSS_ASSIGN_OR_RETURN(Equation e, parse(node, ptrs));
  // Loop order: output labels, then the summed ones.
  std::vector<int> order = e.output;
  for (int id = 0; id < e.labels; ++id) {
    if (std::find(order.begin(), order.end(), id) == order.end() && e.size[static_cast<size_t>(id)] > 1) order.push_back(id);
  }
  int64_t inner = 1;
  for (size_t k = e.output.size(); k < order.size(); ++k) inner *= e.size[static_cast<size_t>(order[k])];
  // Strides of each input per label (0 for broadcast size-1 dims and absent labels).
  std::vector<std::vector<int64_t>> st(in.size(), std::vector<int64_t>(static_cast<size_t>(e.labels), 0));
  for (size_t i = 0; i < in.size(); ++i) {
    const auto ds = dense_strides(in[i].shape);
    for (size_t d = 0; d < e.inputs[i].size(); ++d) {
      if (in[i].shape[d] != 1) st[i][static_cast<size_t>(e.inputs[i][d])] += ds[d];
    }
  }
  return dispatch_numeric(node, in[0].dtype, [&](auto tag) {
    using T = decltype(tag);
    using C = compute_t<T>;
    T* y = out[0].as<T>();
    for (const View& v : in) {
      if (v.numel == 0) {  // an empty operand: every sum is empty
        for (int64_t o = 0; o < out[0].numel; ++o) y[o] = T(C(0));
        return Status::Ok();
      }
    }
    std::vector<int64_t> idx(order.size(), 0);
    std::vector<int64_t> off(in.size(), 0);
    for (int64_t o = 0; o < out[0].numel; ++o) {
      double acc = 0;
      for (int64_t t = 0; t < inner; ++t) {
        double prod = 1;
        for (size_t i = 0; i < in.size(); ++i) prod *= static_cast<double>(static_cast<C>(in[i].as<T>()[off[i]]));
        acc += prod;
        // Odometer over all labels (the summed ones are innermost).
        for (size_t k = order.size(); k-- > 0;) {
          const size_t id = static_cast<size_t>(order[k]);
          for (size_t i = 0; i < in.size(); ++i) off[i] += st[i][id];
          if (++idx[k] < e.size[id]) break;
          for (size_t i = 0; i < in.size(); ++i) off[i] -= st[i][id] * idx[k];
          idx[k] = 0;
        }
      }
      y[o] = T(static_cast<C>(acc));
    }
    return Status::Ok();
  });
}

}  // namespace

std::vector<OpKernel> einsum_kernels() { return {{"Einsum", infer_Einsum, run_Einsum}}; }

}  // namespace moss::engine::ref
