// Batch-1 LSTM cell (lstm_batch1.h). Per direction: the input projection of every step in one
// sgemm (bias Wb + Rb folded in), then per step gates = that row + R h, where R is packed in
// 128-row panels ([panel][hidden][128]) so the product reads R once, sequentially, into eight
// 16-wide accumulators; the gates run 16 hidden units at a time with a polynomial exp. The two
// directions of a bidirectional layer run on two OpenMP threads when the plan has them (this
// file is compiled with -fopenmp; libgomp is oneDNN's runtime already).
#include "engine/kernels/lstm_batch1.h"

#include "engine/kernels/avx512_math.h"
#include "engine/kernels/onednn/onednn_common.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace moss::engine {
namespace {

constexpr int64_t kPanel = 128;  // gate rows per panel: eight zmm accumulators

using avx512::sigmoid16;
using avx512::tanh16;

// g[0, panels*128) = gx + R h, R packed as [panel][k][128].
MOSS_AVX512F void recurrent_product(const float* rp, int64_t panels, int64_t hidden,
                                   const float* h, const float* gx, float* g) {
  for (int64_t q = 0; q < panels; ++q) {
    const float* r = rp + q * hidden * kPanel;
    const float* in = gx + q * kPanel;
    __m512 a0 = _mm512_loadu_ps(in), a1 = _mm512_loadu_ps(in + 16), a2 = _mm512_loadu_ps(in + 32),
           a3 = _mm512_loadu_ps(in + 48), a4 = _mm512_loadu_ps(in + 64),
           a5 = _mm512_loadu_ps(in + 80), a6 = _mm512_loadu_ps(in + 96),
           a7 = _mm512_loadu_ps(in + 112);
    for (int64_t k = 0; k < hidden; ++k, r += kPanel) {
      const __m512 hk = _mm512_set1_ps(h[k]);
      a0 = _mm512_fmadd_ps(hk, _mm512_load_ps(r), a0);
      a1 = _mm512_fmadd_ps(hk, _mm512_load_ps(r + 16), a1);
      a2 = _mm512_fmadd_ps(hk, _mm512_load_ps(r + 32), a2);
      a3 = _mm512_fmadd_ps(hk, _mm512_load_ps(r + 48), a3);
      a4 = _mm512_fmadd_ps(hk, _mm512_load_ps(r + 64), a4);
      a5 = _mm512_fmadd_ps(hk, _mm512_load_ps(r + 80), a5);
      a6 = _mm512_fmadd_ps(hk, _mm512_load_ps(r + 96), a6);
      a7 = _mm512_fmadd_ps(hk, _mm512_load_ps(r + 112), a7);
    }
    float* o = g + q * kPanel;
    _mm512_storeu_ps(o, a0);
    _mm512_storeu_ps(o + 16, a1);
    _mm512_storeu_ps(o + 32, a2);
    _mm512_storeu_ps(o + 48, a3);
    _mm512_storeu_ps(o + 64, a4);
    _mm512_storeu_ps(o + 80, a5);
    _mm512_storeu_ps(o + 96, a6);
    _mm512_storeu_ps(o + 112, a7);
  }
}

// ONNX gate blocks i o f c in g; peepholes p (i o f) or null. Updates c and h in place.
MOSS_AVX512F void lstm_gates(const float* g, const float* p, int64_t hidden, float* c, float* h) {
  for (int64_t k = 0; k < hidden; k += 16) {
    const __mmask16 m = avx512::lanes(hidden - k);
    const __m512 c0 = _mm512_maskz_loadu_ps(m, c + k);
    __m512 gi = _mm512_maskz_loadu_ps(m, g + k);
    __m512 go = _mm512_maskz_loadu_ps(m, g + hidden + k);
    __m512 gf = _mm512_maskz_loadu_ps(m, g + 2 * hidden + k);
    const __m512 gc = _mm512_maskz_loadu_ps(m, g + 3 * hidden + k);
    if (p) {
      gi = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + k), c0, gi);
      gf = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + 2 * hidden + k), c0, gf);
    }
    const __m512 c1 = _mm512_fmadd_ps(sigmoid16(gf), c0, _mm512_mul_ps(sigmoid16(gi), tanh16(gc)));
    if (p) go = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + hidden + k), c1, go);
    _mm512_mask_storeu_ps(c + k, m, c1);
    _mm512_mask_storeu_ps(h + k, m, _mm512_mul_ps(sigmoid16(go), tanh16(c1)));
  }
}

// 64-byte aligned float storage (R panels are read with aligned loads).
struct AlignedFloats {
  std::vector<float> storage;
  float* data = nullptr;
  void resize(size_t n) {
    storage.assign(n + 16, 0.f);
    auto addr = reinterpret_cast<uintptr_t>(storage.data());
    data = storage.data() + ((64 - addr % 64) % 64) / sizeof(float);
  }
  size_t bytes() const { return storage.size() * sizeof(float); }
};

class LstmBatch1 final : public PreparedKernel {
 public:
  LstmBatch1(const onednn::RnnParams& p, const float* w, const float* r, const float* b,
             const float* peep, uint32_t packed, int threads)
      : seq_(p.seq), input_(p.input), hidden_(p.hidden), packed_(packed) {
    dirs_ = p.direction == onednn::RnnParams::Direction::kBidirectional ? 2 : 1;
    teams_ = dirs_ == 2 && threads >= 2 ? 2 : 1;
    reverse_only_ = p.direction == onednn::RnnParams::Direction::kReverse;
    const int64_t G = 4 * hidden_;
    panels_ = (G + kPanel - 1) / kPanel;
    stride_ = panels_ * kPanel;
    w_.assign(w, w + dirs_ * G * input_);
    bias_.assign(static_cast<size_t>(dirs_ * stride_), 0.f);
    if (b) {
      for (int64_t d = 0; d < dirs_; ++d) {
        for (int64_t j = 0; j < G; ++j) bias_[d * stride_ + j] = b[d * 2 * G + j] + b[d * 2 * G + G + j];
      }
    }
    if (peep) peep_.assign(peep, peep + dirs_ * 3 * hidden_);
    rp_.resize(static_cast<size_t>(dirs_ * panels_ * hidden_ * kPanel));
    for (int64_t d = 0; d < dirs_; ++d) {
      float* dst = rp_.data + d * panels_ * hidden_ * kPanel;
      const float* src = r + d * G * hidden_;
      for (int64_t j = 0; j < G; ++j) {
        const int64_t q = j / kPanel, jj = j % kPanel;
        for (int64_t k = 0; k < hidden_; ++k) dst[(q * hidden_ + k) * kPanel + jj] = src[j * hidden_ + k];
      }
    }
  }

  // gx for every step and direction, then g, h and c per direction (each rounded up to 64 bytes).
  size_t scratch_bytes() const override {
    return (static_cast<size_t>(seq_ * dirs_ * stride_) + static_cast<size_t>(dirs_) * state_floats()) *
           sizeof(float);
  }
  size_t weights_bytes() const override {
    return (w_.size() + bias_.size() + peep_.size()) * sizeof(float) + rp_.bytes();
  }
  uint32_t packed_inputs() const override { return packed_; }

  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (!s.dnnl || s.dnnl->capacity() < scratch_bytes()) {
      return internal_error("LSTM: scratch of {} bytes not reserved", scratch_bytes());
    }
    auto opt = [&](size_t i) -> const float* {
      return i < in.size() && in[i].present() ? in[i].as<float>() : nullptr;
    };
    auto dst = [&](size_t i) -> float* {
      return i < out.size() && out[i].data ? out[i].as<float>() : nullptr;
    };
    // Batch 1: both ONNX layouts put step t of X at t*input, of Y at (t*dirs + d)*hidden and a
    // direction's state at d*hidden.
    const float *x = in[0].as<float>(), *h0 = opt(5), *c0 = opt(6);
    float *y = dst(0), *yh = dst(1), *yc = dst(2);
    float* gx = static_cast<float*>(s.dnnl->impl().buffer);
    const int64_t G = 4 * hidden_, ld = dirs_ * stride_;
    for (int64_t t = 0; t < seq_; ++t) std::memcpy(gx + t * ld, bias_.data(), ld * sizeof(float));
    for (int64_t d = 0; d < dirs_; ++d) {
      MOSS_RETURN_IF_ERROR(onednn::sgemm(false, true, seq_, G, input_, x, input_,
                                         w_.data() + d * G * input_, input_, 1.0f, gx + d * stride_, ld));
    }
    // The directions of a bidirectional layer are independent: one thread each when the plan
    // has two (each writes only its own state and its own half of Y's rows).
    float* states = gx + seq_ * ld;
#if defined(_OPENMP)
#pragma omp parallel for num_threads(teams_) schedule(static, 1) if (teams_ > 1)
#endif
    for (int64_t d = 0; d < dirs_; ++d) {
      float* g = states + d * static_cast<int64_t>(state_floats());
      run_direction(d, gx, h0, c0, g, y, yh, yc);
    }
    return Status::Ok();
  }

 private:
  // Floats of one direction's g, h and c.
  size_t state_floats() const {
    const size_t hp = static_cast<size_t>((hidden_ + 15) / 16 * 16);
    return static_cast<size_t>(stride_) + 2 * hp;
  }

  // Direction d over every step: gates from gx (the input projections) and R h; g, h and c in
  // `state` (state_floats()).
  void run_direction(int64_t d, const float* gx, const float* h0, const float* c0, float* state,
                     float* y, float* yh, float* yc) const {
    const size_t hp = static_cast<size_t>((hidden_ + 15) / 16 * 16);
    float* g = state;
    float* h = g + stride_;
    float* c = h + hp;
    const int64_t ld = dirs_ * stride_;
    const bool reverse = reverse_only_ || d == 1;
    const float* rp = rp_.data + d * panels_ * hidden_ * kPanel;
    const float* peep = peep_.empty() ? nullptr : peep_.data() + d * 3 * hidden_;
    if (h0) std::memcpy(h, h0 + d * hidden_, hidden_ * sizeof(float));
    else std::fill_n(h, hidden_, 0.f);
    if (c0) std::memcpy(c, c0 + d * hidden_, hidden_ * sizeof(float));
    else std::fill_n(c, hidden_, 0.f);
    for (int64_t s_ = 0; s_ < seq_; ++s_) {
      const int64_t t = reverse ? seq_ - 1 - s_ : s_;
      recurrent_product(rp, panels_, hidden_, h, gx + t * ld + d * stride_, g);
      lstm_gates(g, peep, hidden_, c, h);
      if (y) std::memcpy(y + (t * dirs_ + d) * hidden_, h, hidden_ * sizeof(float));
    }
    if (yh) std::memcpy(yh + d * hidden_, h, hidden_ * sizeof(float));
    if (yc) std::memcpy(yc + d * hidden_, c, hidden_ * sizeof(float));
  }

 private:
  int64_t seq_, input_, hidden_, dirs_ = 1, panels_ = 0, stride_ = 0;
  int teams_ = 1;  // threads running directions
  bool reverse_only_ = false;
  uint32_t packed_;
  std::vector<float> w_, bias_, peep_;
  AlignedFloats rp_;
};

}  // namespace

std::unique_ptr<const PreparedKernel> make_lstm_batch1(const onednn::RnnParams& p, const float* w,
                                                       const float* r, const float* b,
                                                       const float* peep, uint32_t packed_inputs,
                                                       int threads) {
  if (!avx512::host_has_avx512() || p.cell != onednn::RnnParams::Cell::kLstm || p.batch != 1) return nullptr;
  if (p.seq <= 0 || p.input <= 0 || p.hidden <= 0 || !w || !r) return nullptr;
  return std::make_unique<LstmBatch1>(p, w, r, b, peep, packed_inputs, threads);
}

bool is_lstm_batch1(const PreparedKernel* k) { return dynamic_cast<const LstmBatch1*>(k) != nullptr; }

}  // namespace moss::engine
