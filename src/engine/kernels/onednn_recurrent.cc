// LSTM, GRU and RNN nodes on oneDNN's RNN primitives (kernels/onednn/onednn_rnn.cc) when the node
// has a form oneDNN computes: constant weights, default activations (RNN: one of Tanh, Relu,
// Sigmoid for both directions), no clip, no input_forget. Everything else stays with the reference
// kernel (ref/recurrent.cc), which infer() has already validated the node against. A batch-1
// LSTM runs our own cell instead (lstm_batch1.h). sequence_lens
// is checked at run time: a batch whose length is not the full sequence runs the reference kernel.
#include "engine/kernels/lstm_batch1.h"
#include "engine/kernels/onednn_bridge.h"
#include "engine/kernels/registry.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace moss::engine {
namespace {

using onednn::OnednnRnn;
using onednn::RnnParams;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Whether the node's activation list (one per direction, or one for both) is the default one.
bool default_activations(const Node& node, std::initializer_list<const char*> defaults) {
  const Attribute* a = node.attr("activations");
  if (!a || a->strings.empty()) return true;
  const size_t n = defaults.size();
  if (a->strings.size() % n != 0) return false;
  for (size_t i = 0; i < a->strings.size(); ++i) {
    if (lower(a->strings[i]) != *(defaults.begin() + i % n)) return false;
  }
  return true;
}

// RNN's single activation, the same for every direction; nullopt when oneDNN has no such cell.
std::optional<RnnParams::Cell> vanilla_cell(const Node& node) {
  const Attribute* a = node.attr("activations");
  if (!a || a->strings.empty()) return RnnParams::Cell::kRnnTanh;
  const std::string first = lower(a->strings[0]);
  for (const std::string& s : a->strings) {
    if (lower(s) != first) return std::nullopt;
  }
  if (first == "tanh") return RnnParams::Cell::kRnnTanh;
  if (first == "relu") return RnnParams::Cell::kRnnRelu;
  if (first == "sigmoid") return RnnParams::Cell::kRnnSigmoid;
  return std::nullopt;
}

class RecurrentKernel final : public PreparedKernel {
 public:
  RecurrentKernel(std::unique_ptr<const OnednnRnn> k, Node node, RunFn reference, int64_t seq,
                  bool runtime_lens, uint32_t packed)
      : k_(std::move(k)),
        node_(std::move(node)),
        reference_(reference),
        seq_(seq),
        runtime_lens_(runtime_lens),
        packed_(packed) {}
  size_t scratch_bytes() const override { return k_->scratchpad_bytes(); }
  size_t weights_bytes() const override { return k_->weights_bytes(); }
  uint32_t packed_inputs() const override { return packed_; }
  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (runtime_lens_ && in.size() > 4 && in[4].present()) {
      const int32_t* lens = in[4].as<int32_t>();
      if (!std::all_of(lens, lens + in[4].numel, [&](int32_t l) { return l == seq_; })) {
        return reference_(node_, in, out);
      }
    }
    if (!s.dnnl) return internal_error("{}: no oneDNN scratch in this context", node_.label());
    auto ptr = [&](size_t i) -> const float* {
      return i < in.size() && in[i].present() ? in[i].as<float>() : nullptr;
    };
    auto dst = [&](size_t i) -> float* {
      return i < out.size() && out[i].data ? out[i].as<float>() : nullptr;
    };
    return k_->execute(in[0].as<float>(), ptr(5), ptr(6), dst(0), dst(1), dst(2), *s.dnnl);
  }

 private:
  std::unique_ptr<const OnednnRnn> k_;
  Node node_;
  RunFn reference_;
  int64_t seq_;
  bool runtime_lens_;
  uint32_t packed_;
};

std::unique_ptr<const PreparedKernel> prepare_recurrent(const Node& node,
                                                        std::span<const TensorInfo* const> in,
                                                        const std::vector<TensorInfo>& out,
                                                        int threads) {
  (void)out;
  auto opt = [&](size_t i) -> const TensorInfo* { return i < in.size() ? in[i] : nullptr; };
  if (in.size() < 3 || !in[0] || !in[1] || !in[2] || !in[1]->value || !in[2]->value) return nullptr;
  if (opt(3) && !opt(3)->value) return nullptr;
  if (opt(7) && !opt(7)->value) return nullptr;
  for (const TensorInfo* t : in) {
    if (t && t != opt(4) && t->dtype != DType::kFloat32) return nullptr;
  }
  if (node.attr_float("clip", 0.f) != 0.f) return nullptr;
  RnnParams p;
  const std::string& op = node.op_type;
  if (op == "LSTM") {
    if (node.attr_int("input_forget", 0) != 0) return nullptr;
    if (!default_activations(node, {"sigmoid", "tanh", "tanh"})) return nullptr;
    p.cell = RnnParams::Cell::kLstm;
  } else if (op == "GRU") {
    if (!default_activations(node, {"sigmoid", "tanh"})) return nullptr;
    p.cell = node.attr_int("linear_before_reset", 0) != 0 ? RnnParams::Cell::kLbrGru
                                                          : RnnParams::Cell::kGru;
  } else if (op == "RNN") {
    auto cell = vanilla_cell(node);
    if (!cell) return nullptr;
    p.cell = *cell;
  } else {
    return nullptr;
  }
  const std::string dir = node.attr_string("direction", "forward");
  p.direction = dir == "bidirectional" ? RnnParams::Direction::kBidirectional
                : dir == "reverse"     ? RnnParams::Direction::kReverse
                                       : RnnParams::Direction::kForward;
  p.batch_first = node.attr_int("layout", 0) == 1;
  const auto& x = in[0]->shape;
  if (x.size() != 3) return nullptr;
  p.seq = p.batch_first ? x[1] : x[0];
  p.batch = p.batch_first ? x[0] : x[1];
  p.input = x[2];
  p.hidden = in[2]->shape.size() == 3 ? in[2]->shape[2] : 0;
  if (p.seq <= 0 || p.batch <= 0 || p.input <= 0 || p.hidden <= 0) return nullptr;
  p.has_initial_h = opt(5) != nullptr;
  p.has_initial_c = op == "LSTM" && opt(6) != nullptr;
  // A step's work (a [batch, hidden] x [hidden, gates*hidden] product) under 4M multiply-adds
  // is too small to split: the primitive wakes its team at every step, and at 2 threads a
  // bidirectional LSTM tagger (batch 1, hidden 256) ran 1.4x slower than at 1
  // (bench/engine/compare_ort.py, OMP_WAIT_POLICY=passive).
  p.threads = p.batch * p.gates() * p.hidden * p.hidden < (int64_t{1} << 22) ? 1 : threads;
  // sequence_lens: a constant one must cover every step; a run-time one is checked per run.
  bool runtime_lens = false;
  if (const TensorInfo* lens = opt(4)) {
    if (!lens->value) {
      runtime_lens = true;
    } else {
      const int32_t* l = lens->value->data<int32_t>();
      if (!std::all_of(l, l + lens->numel(), [&](int32_t v) { return v == p.seq; })) return nullptr;
    }
  }
  const float* peep = op == "LSTM" && opt(7) ? opt(7)->value->data<float>() : nullptr;
  const float* w = in[1]->value->data<float>();
  const float* r = in[2]->value->data<float>();
  const float* b = opt(3) ? opt(3)->value->data<float>() : nullptr;
  // W, R, B and P live in the kernel, unless the reference may still need them at run time.
  uint32_t packed = 0;
  if (!runtime_lens) packed = 0b110u | (opt(3) ? 0b1000u : 0u) | (peep ? 0b10000000u : 0u);
  if (p.cell == RnnParams::Cell::kLstm && p.batch == 1 && !runtime_lens) {
    if (auto k = make_lstm_batch1(p, w, r, b, peep, packed, threads)) return k;
  }
  auto k = OnednnRnn::create(p, w, r, b, peep);
  if (!k.ok()) return nullptr;
  const OpKernel* reference = find_kernel(node);
  if (!reference || !reference->run) return nullptr;
  return std::make_unique<RecurrentKernel>(std::move(k).value(), node, reference->run, p.seq,
                                           runtime_lens, packed);
}

}  // namespace

PrepareFn onednn_recurrent_prepare(const std::string& op) {
  return op == "LSTM" || op == "GRU" || op == "RNN" ? prepare_recurrent : nullptr;
}

}  // namespace moss::engine
