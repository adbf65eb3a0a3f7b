// OnednnRnn: one ONNX LSTM / GRU / RNN layer on oneDNN's RNN primitives (lstm_forward,
// gru_forward, lbr_gru_forward, vanilla_rnn_forward). ONNX and oneDNN differ in gate order (LSTM
// i o f c vs i f c o; peepholes i o f vs i f o), weight layout ([dirs, gates*hidden, input] =
// ldgoi vs ldigo, reordered once here), bias (ONNX Wb and Rb, oneDNN their sum, plus Rb of the
// h gate alone for linear-before-reset GRU) and where the direction axis sits in Y. Staging
// buffers after oneDNN's scratchpad bridge the layouts oneDNN cannot write directly.
#include <cstring>

#include "engine/kernels/onednn/onednn_common.h"

namespace moss::engine::onednn {

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

size_t round64(size_t n) { return (n + 63) / 64 * 64; }

// oneDNN gate g holds ONNX gate kLstmGate[g] (LSTM); the other cells share ONNX's order.
constexpr int kLstmGate[4] = {0, 2, 3, 1};       // i f c o <- i o f c
constexpr int kLstmPeephole[3] = {0, 2, 1};      // i f o <- i o f

}  // namespace

struct OnednnRnn::Impl {
  RnnParams p;
  int64_t dirs = 1;
  dnnl::primitive prim;
  dnnl::memory::desc src_layer_md, dst_layer_md, iter_md, scratchpad_md;
  dnnl::memory weights_layer, weights_iter, weights_peephole, bias;
  bool lstm = false;
  bool h0_given = false, c0_given = false;  // initial states the primitive reads
  // Staging (offsets into the scratch buffer after oneDNN's scratchpad; 0 size = written
  // directly): Y when ONNX puts dirs between seq and batch, states for batch_first with dirs x batch.
  bool stage_y = false, stage_states = false;
  size_t y_offset = 0, state_offset = 0, total_scratch = 0, weights_bytes = 0;
  int threads = 1;
  std::string impl_name;
};

namespace {

dnnl::memory::desc md(const Dims& dims, tag t) { return {to_dnnl(dims), dt::f32, t}; }

Status build_rnn(const RnnParams& p, const float* w, const float* r, const float* b,
                 const float* peep, OnednnRnn::Impl& k) {
  const int64_t T = p.seq, N = p.batch, I = p.input, H = p.hidden;
  const int64_t D = p.direction == RnnParams::Direction::kBidirectional ? 2 : 1;
  const int64_t G = p.gates();
  MOSS_RETURN_IF_ERROR(check_dims({T, N, I}, "RNN input"));
  MOSS_RETURN_IF_ERROR(check_dims({D, G, H, std::max(I, H)}, "RNN weights"));
  if (w == nullptr || r == nullptr) return invalid_argument("RNN: weights missing");
  const bool lstm = p.cell == RnnParams::Cell::kLstm;
  const bool lbr = p.cell == RnnParams::Cell::kLbrGru;
  if (p.has_initial_c && !lstm) return invalid_argument("RNN: initial_c is LSTM only");
  if (peep && !lstm) return invalid_argument("RNN: peepholes are LSTM only");
  k.p = p;
  k.dirs = D;
  k.lstm = lstm;

  // Weights in oneDNN gate order, still ONNX's [dirs][gate][hidden][in] (= ldgoi), and the bias.
  auto permute = [&](const float* src, int64_t in) {
    std::vector<float> out(static_cast<size_t>(D * G * H * in));
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t g = 0; g < G; ++g) {
        const int64_t from = lstm ? kLstmGate[g] : g;
        std::memcpy(out.data() + ((d * G + g) * H) * in, src + ((d * G + from) * H) * in,
                    static_cast<size_t>(H * in) * sizeof(float));
      }
    }
    return out;
  };
  const std::vector<float> wl = permute(w, I), wi = permute(r, H);
  const int64_t BG = lbr ? 4 : G;  // LBR GRU keeps Rb of the h gate apart
  std::vector<float> bias(static_cast<size_t>(D * BG * H), 0.f);
  if (b) {
    for (int64_t d = 0; d < D; ++d) {
      const float* wb = b + d * 2 * G * H;
      const float* rb = wb + G * H;
      for (int64_t g = 0; g < G; ++g) {
        const int64_t from = lstm ? kLstmGate[g] : g;
        float* dst = bias.data() + (d * BG + g) * H;
        const bool split = lbr && g == 2;
        for (int64_t j = 0; j < H; ++j) dst[j] = wb[from * H + j] + (split ? 0.f : rb[from * H + j]);
        if (split) std::memcpy(dst + H, rb + 2 * H, static_cast<size_t>(H) * sizeof(float));
      }
    }
  }
  std::vector<float> peephole;
  if (peep) {
    peephole.resize(static_cast<size_t>(D * 3 * H));
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t g = 0; g < 3; ++g) {
        std::memcpy(peephole.data() + (d * 3 + g) * H, peep + (d * 3 + kLstmPeephole[g]) * H,
                    static_cast<size_t>(H) * sizeof(float));
      }
    }
  }

  const tag layer_tag = p.batch_first ? tag::ntc : tag::tnc;
  k.src_layer_md = md({T, N, I}, layer_tag);
  k.dst_layer_md = md({T, N, D * H}, layer_tag);
  k.iter_md = md({1, D, N, H}, tag::ldnc);
  const dnnl::memory::desc none;
  // oneDNN's LSTM takes both initial states or neither: a missing one is passed as zeros.
  k.h0_given = p.has_initial_h || (lstm && p.has_initial_c);
  k.c0_given = lstm && k.h0_given;
  const dnnl::memory::desc src_iter = k.h0_given ? k.iter_md : none;
  const dnnl::memory::desc src_iter_c = k.c0_given ? k.iter_md : none;
  const dnnl::memory::desc wl_any = md({1, D, I, G, H}, tag::any);
  const dnnl::memory::desc wi_any = md({1, D, H, G, H}, tag::any);
  const dnnl::memory::desc bias_md = md({1, D, BG, H}, tag::ldgo);
  const dnnl::memory::desc peep_md = peep ? md({1, D, 3, H}, tag::ldgo) : none;
  const auto dir = p.direction == RnnParams::Direction::kForward
                       ? dnnl::rnn_direction::unidirectional_left2right
                   : p.direction == RnnParams::Direction::kReverse
                       ? dnnl::rnn_direction::unidirectional_right2left
                       : dnnl::rnn_direction::bidirectional_concat;
  const auto inference = dnnl::prop_kind::forward_inference;

  k.threads = resolve_threads(p.threads);
  ThreadScope scope(k.threads);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::memory::desc wl_md, wi_md;
  switch (p.cell) {
    case RnnParams::Cell::kLstm: {
      dnnl::lstm_forward::desc desc(inference, dir, k.src_layer_md, src_iter, src_iter_c, wl_any,
                                    wi_any, peep_md, bias_md, k.dst_layer_md, k.iter_md,
                                    k.iter_md);
      dnnl::lstm_forward::primitive_desc pd(desc, attr, cpu_engine());
      k.prim = dnnl::lstm_forward(pd);
      wl_md = pd.weights_layer_desc();
      wi_md = pd.weights_iter_desc();
      k.scratchpad_md = pd.scratchpad_desc();
      k.impl_name = pd.impl_info_str();
      break;
    }
    case RnnParams::Cell::kGru: {
      dnnl::gru_forward::desc desc(inference, dir, k.src_layer_md, src_iter, wl_any, wi_any,
                                   bias_md, k.dst_layer_md, k.iter_md);
      dnnl::gru_forward::primitive_desc pd(desc, attr, cpu_engine());
      k.prim = dnnl::gru_forward(pd);
      wl_md = pd.weights_layer_desc();
      wi_md = pd.weights_iter_desc();
      k.scratchpad_md = pd.scratchpad_desc();
      k.impl_name = pd.impl_info_str();
      break;
    }
    case RnnParams::Cell::kLbrGru: {
      dnnl::lbr_gru_forward::desc desc(inference, dir, k.src_layer_md, src_iter, wl_any, wi_any,
                                       bias_md, k.dst_layer_md, k.iter_md);
      dnnl::lbr_gru_forward::primitive_desc pd(desc, attr, cpu_engine());
      k.prim = dnnl::lbr_gru_forward(pd);
      wl_md = pd.weights_layer_desc();
      wi_md = pd.weights_iter_desc();
      k.scratchpad_md = pd.scratchpad_desc();
      k.impl_name = pd.impl_info_str();
      break;
    }
    case RnnParams::Cell::kRnnTanh:
    case RnnParams::Cell::kRnnRelu:
    case RnnParams::Cell::kRnnSigmoid: {
      const auto act = p.cell == RnnParams::Cell::kRnnTanh   ? dnnl::algorithm::eltwise_tanh
                       : p.cell == RnnParams::Cell::kRnnRelu ? dnnl::algorithm::eltwise_relu
                                                             : dnnl::algorithm::eltwise_logistic;
      dnnl::vanilla_rnn_forward::desc desc(inference, act, dir, k.src_layer_md, src_iter, wl_any,
                                           wi_any, bias_md, k.dst_layer_md, k.iter_md);
      dnnl::vanilla_rnn_forward::primitive_desc pd(desc, attr, cpu_engine());
      k.prim = dnnl::vanilla_rnn_forward(pd);
      wl_md = pd.weights_layer_desc();
      wi_md = pd.weights_iter_desc();
      k.scratchpad_md = pd.scratchpad_desc();
      k.impl_name = pd.impl_info_str();
      break;
    }
  }
  k.weights_layer = pack(md({1, D, I, G, H}, tag::ldgoi), wl.data(), wl_md);
  k.weights_iter = pack(md({1, D, H, G, H}, tag::ldgoi), wi.data(), wi_md);
  k.bias = pack(bias_md, bias.data(), bias_md);
  if (peep) k.weights_peephole = pack(peep_md, peephole.data(), peep_md);
  k.weights_bytes = wl_md.get_size() + wi_md.get_size() + bias_md.get_size() +
                    (peep ? peep_md.get_size() : 0);

  k.stage_y = !p.batch_first && D > 1 && N > 1;
  k.stage_states = p.batch_first && D > 1 && N > 1;
  k.y_offset = round64(k.scratchpad_md.get_size());
  // Always produce Y, Y_h (and Y_c): one primitive whichever outputs a graph reads.
  k.state_offset = k.y_offset + round64(static_cast<size_t>(T * N * D * H) * sizeof(float));
  const size_t state_bytes = round64(static_cast<size_t>(D * N * H) * sizeof(float));
  k.total_scratch = k.state_offset + 4 * state_bytes;  // h0, c0, Y_h, Y_c
  return Status::Ok();
}

// [a, b, H] -> [b, a, H] (ONNX's [seq, dirs, batch] from oneDNN's [seq, batch, dirs], per step;
// states between [batch, dirs] and [dirs, batch]).
void swap_outer(const float* src, float* dst, int64_t a, int64_t b, int64_t h) {
  for (int64_t i = 0; i < a; ++i) {
    for (int64_t j = 0; j < b; ++j) {
      std::memcpy(dst + (j * a + i) * h, src + (i * b + j) * h, static_cast<size_t>(h) * sizeof(float));
    }
  }
}

}  // namespace

OnednnRnn::OnednnRnn(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnRnn::~OnednnRnn() = default;

Result<std::unique_ptr<const OnednnRnn>> OnednnRnn::create(const RnnParams& params,
                                                           const float* w, const float* r,
                                                           const float* b, const float* p) {
  return dnnl_guard("RNN", [&]() -> Result<std::unique_ptr<const OnednnRnn>> {
    auto impl = std::make_unique<Impl>();
    MOSS_RETURN_IF_ERROR(build_rnn(params, w, r, b, p, *impl));
    return std::unique_ptr<const OnednnRnn>(new OnednnRnn(std::move(impl)));
  });
}

size_t OnednnRnn::scratchpad_bytes() const { return impl_->total_scratch; }
size_t OnednnRnn::weights_bytes() const { return impl_->weights_bytes; }
std::string OnednnRnn::implementation() const { return impl_->impl_name; }

Status OnednnRnn::execute(const float* x, const float* h0, const float* c0, float* y, float* y_h,
                          float* y_c, OnednnScratch& scratch) const {
  const Impl& k = *impl_;
  if (x == nullptr || (k.p.has_initial_h && h0 == nullptr) || (k.p.has_initial_c && c0 == nullptr)) {
    return invalid_argument("RNN: input buffer missing");
  }
  return dnnl_guard("RNN", [&]() -> Status {
    if (scratch.capacity() < k.total_scratch) scratch.reserve(k.total_scratch);
    char* base = static_cast<char*>(scratch.impl().buffer);
    const int64_t D = k.dirs, N = k.p.batch, H = k.p.hidden, T = k.p.seq;
    const size_t state_bytes = round64(static_cast<size_t>(D * N * H) * sizeof(float));
    float* staged[4];
    for (int i = 0; i < 4; ++i) {
      staged[i] = reinterpret_cast<float*>(base + k.state_offset + i * state_bytes);
    }
    // ONNX state buffer -> what oneDNN reads ([dirs, batch, hidden]); zeros when absent.
    auto state_in = [&](const float* s, float* tmp) -> const float* {
      if (s == nullptr) {
        std::memset(tmp, 0, static_cast<size_t>(D * N * H) * sizeof(float));
        return tmp;
      }
      if (!k.stage_states) return s;
      swap_outer(s, tmp, N, D, H);
      return tmp;
    };
    float* y_dnnl = y && !k.stage_y ? y : reinterpret_cast<float*>(base + k.y_offset);
    float* yh_dnnl = y_h && !k.stage_states ? y_h : staged[2];
    float* yc_dnnl = y_c && !k.stage_states ? y_c : staged[3];
    std::unordered_map<int, dnnl::memory> args;
    args.reserve(12);
    args.emplace(DNNL_ARG_SRC_LAYER, wrap(k.src_layer_md, x));
    if (k.h0_given) {
      args.emplace(DNNL_ARG_SRC_ITER,
                   wrap(k.iter_md, state_in(k.p.has_initial_h ? h0 : nullptr, staged[0])));
    }
    if (k.c0_given) {
      args.emplace(DNNL_ARG_SRC_ITER_C,
                   wrap(k.iter_md, state_in(k.p.has_initial_c ? c0 : nullptr, staged[1])));
    }
    args.emplace(DNNL_ARG_WEIGHTS_LAYER, k.weights_layer);
    args.emplace(DNNL_ARG_WEIGHTS_ITER, k.weights_iter);
    if (k.weights_peephole) args.emplace(DNNL_ARG_WEIGHTS_PEEPHOLE, k.weights_peephole);
    args.emplace(DNNL_ARG_BIAS, k.bias);
    args.emplace(DNNL_ARG_DST_LAYER, wrap(k.dst_layer_md, y_dnnl));
    args.emplace(DNNL_ARG_DST_ITER, wrap(k.iter_md, yh_dnnl));
    if (k.lstm) args.emplace(DNNL_ARG_DST_ITER_C, wrap(k.iter_md, yc_dnnl));
    if (k.scratchpad_md.get_size() > 0) {
      args.emplace(DNNL_ARG_SCRATCHPAD, wrap(k.scratchpad_md, base));
    }
    {
      ThreadScope threads(k.threads);
      k.prim.execute(scratch.impl().stream, args);
      scratch.impl().stream.wait();
    }
    if (y && k.stage_y) {
      for (int64_t t = 0; t < T; ++t) swap_outer(y_dnnl + t * N * D * H, y + t * D * N * H, N, D, H);
    }
    if (k.stage_states) {
      if (y_h) swap_outer(yh_dnnl, y_h, D, N, H);
      if (y_c && k.lstm) swap_outer(yc_dnnl, y_c, D, N, H);
    }
    return Status::Ok();
  });
}

}  // namespace moss::engine::onednn
