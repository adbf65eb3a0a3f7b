#include "engine/kernels/onednn/onednn_common.h"

#include "common/half.h"
#include "engine/kernels/avx512_math.h"
#include "engine/kernels/compile_clock.h"
#include "engine/runtime/packed_weights.h"

#include <fmt/format.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

// Debian's oneDNN runs on GNU OpenMP, which libdnnl already loads. Weak references let us set the
// per-thread team size without making every binary that links the engine add -fopenmp.
extern "C" {
void omp_set_num_threads(int) __attribute__((weak));
int omp_get_max_threads(void) __attribute__((weak));
}

namespace moss::engine::onednn {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 31;
constexpr int64_t kMaxBytes = int64_t{1} << 34;

dnnl::memory::format_tag plain_tag(size_t rank) {
  using tag = dnnl::memory::format_tag;
  static constexpr tag kTags[] = {tag::undef, tag::a,     tag::ab,    tag::abc,
                                  tag::abcd,  tag::abcde, tag::abcdef};
  return rank < std::size(kTags) ? kTags[rank] : tag::undef;
}

}  // namespace

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

OnednnScratch::Impl::~Impl() { std::free(buffer); }

int64_t numel(const Dims& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

Status check_dims(const Dims& dims, std::string_view what) {
  if (dims.empty() || dims.size() > 6) {
    return invalid_argument("{}: rank {} not in 1..6", what, dims.size());
  }
  int64_t bytes = 4;
  for (int64_t d : dims) {
    if (d <= 0 || d >= kMaxDim) return invalid_argument("{}: dimension {} out of range", what, d);
    if (bytes > kMaxBytes / d) return resource_exhausted("{}: tensor larger than 16 GiB", what);
    bytes *= d;
  }
  return Status::Ok();
}

dnnl::memory::dims to_dnnl(const Dims& dims) {
  return dnnl::memory::dims(dims.begin(), dims.end());
}

dnnl::memory::desc plain_md(const Dims& dims, dnnl::memory::data_type dt) {
  return dnnl::memory::desc(to_dnnl(dims), dt, plain_tag(dims.size()));
}

dnnl::memory::data_type dnnl_type(ElementType t) {
  using dt = dnnl::memory::data_type;
  return t == ElementType::kU8 ? dt::u8 : t == ElementType::kS8 ? dt::s8 : dt::f32;
}

Layout layout_from_md(const dnnl::memory::desc& md) {
  auto impl = std::make_shared<Layout::Impl>();
  impl->md = md;
  impl->dims.assign(md.data.dims, md.data.dims + md.data.ndims);
  return Layout(std::move(impl));
}

Result<dnnl::memory::desc> choose_md(const LayoutChoice& choice, const Dims& dims,
                                     std::string_view what, dnnl::memory::data_type dt) {
  switch (choice.kind) {
    case LayoutChoice::Kind::kPlain:
      return plain_md(dims, dt);
    case LayoutChoice::Kind::kAny:
      return dnnl::memory::desc(to_dnnl(dims), dt, dnnl::memory::format_tag::any);
    case LayoutChoice::Kind::kExact:
      if (choice.exact.is_empty() || choice.exact.dims() != dims) {
        return invalid_argument("{}: requested layout {} does not have dims {}", what,
                                choice.exact.is_empty() ? "(empty)" : choice.exact.to_string(),
                                fmt::join(dims, "x"));
      }
      return choice.exact.impl().md;
  }
  return internal_error("{}: bad layout choice", what);
}

Status build_post_ops(const std::vector<PostOp>& ops, bool allow_residual, dnnl::post_ops& out,
                      bool* has_residual) {
  using alg = dnnl::algorithm;
  *has_residual = false;
  for (const PostOp& op : ops) {
    switch (op.kind) {
      case PostOp::Kind::kRelu:
        out.append_eltwise(1.f, alg::eltwise_relu, 0.f, 0.f);
        break;
      case PostOp::Kind::kLeakyRelu:
        out.append_eltwise(1.f, alg::eltwise_relu, op.alpha, 0.f);
        break;
      case PostOp::Kind::kClip:
        if (!(op.alpha <= op.beta)) return invalid_argument("clip post-op: min > max");
        out.append_eltwise(1.f, alg::eltwise_clip_v2, op.alpha, op.beta);
        break;
      case PostOp::Kind::kSigmoid:
        out.append_eltwise(1.f, alg::eltwise_logistic, 0.f, 0.f);
        break;
      case PostOp::Kind::kTanh:
        out.append_eltwise(1.f, alg::eltwise_tanh, 0.f, 0.f);
        break;
      case PostOp::Kind::kHardSwish:
        out.append_eltwise(1.f, alg::eltwise_hardswish, 0.f, 0.f);
        break;
      case PostOp::Kind::kHardSigmoid:
        // oneDNN 2.6 has no hardsigmoid: alpha*x+beta, then clip to [0, 1].
        out.append_eltwise(1.f, alg::eltwise_linear, op.alpha, op.beta);
        out.append_eltwise(1.f, alg::eltwise_clip_v2, 0.f, 1.f);
        break;
      case PostOp::Kind::kGeluErf:
        out.append_eltwise(1.f, alg::eltwise_gelu_erf, 0.f, 0.f);
        break;
      case PostOp::Kind::kGeluTanh:
        out.append_eltwise(1.f, alg::eltwise_gelu_tanh, 0.f, 0.f);
        break;
      case PostOp::Kind::kLinear:
        out.append_eltwise(1.f, alg::eltwise_linear, op.alpha, op.beta);
        break;
      case PostOp::Kind::kAddResidual:
        if (!allow_residual) return unimplemented("residual add is not fused into this kernel");
        if (*has_residual) return unimplemented("more than one residual add post-op");
        out.append_sum(1.f);
        *has_residual = true;
        break;
      default:
        return invalid_argument("unknown post-op kind {}", static_cast<int>(op.kind));
    }
  }
  return Status::Ok();
}

dnnl::primitive_attr make_attr(const dnnl::post_ops& ops) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(ops);
  return attr;
}

int resolve_threads(int threads) {
  if (threads > 0) return threads;
  return omp_get_max_threads != nullptr ? omp_get_max_threads() : 1;
}

ThreadScope::ThreadScope(int threads) {
  if (omp_get_max_threads == nullptr || omp_set_num_threads == nullptr) return;
  saved_ = omp_get_max_threads();
  if (threads > 0 && threads != saved_) omp_set_num_threads(threads);
}

ThreadScope::~ThreadScope() {
  if (omp_set_num_threads != nullptr && saved_ > 0 && omp_get_max_threads() != saved_) {
    omp_set_num_threads(saved_);
  }
}

Status status_from_dnnl(const dnnl::error& e, std::string_view what) {
  if (e.status == dnnl_unimplemented) {
    return unimplemented("{}: oneDNN has no implementation for this configuration", what);
  }
  if (e.status == dnnl_out_of_memory) return resource_exhausted("{}: oneDNN out of memory", what);
  if (e.status == dnnl_invalid_arguments) {
    return invalid_argument("{}: oneDNN rejected the arguments: {}", what, e.what());
  }
  return internal_error("{}: oneDNN error {}: {}", what, static_cast<int>(e.status), e.what());
}

dnnl::memory pack(const dnnl::memory::desc& from, const void* data, const dnnl::memory::desc& to) {
  ClockScope timed(compile_clock().pack_ns);
  auto md_bytes = [](const dnnl::memory::desc& md) {
    return std::string(reinterpret_cast<const char*>(&md.data), sizeof md.data);
  };
  PackSession* session = PackSession::current();
  if (session) {
    // A compiled-plan cache replay: the same descriptors, so the same packed bytes (stored ones
    // are read in place; the session's owner keeps them alive).
    const PackedWeights::Buffer* b = session->next([&](const PackedWeights::Buffer& c) {
      dnnl_memory_desc_t f, t;
      std::memcpy(&f, c.from_md.data(), sizeof f);
      std::memcpy(&t, c.to_md.data(), sizeof t);
      return dnnl::memory::desc(f) == from && dnnl::memory::desc(t) == to && c.size == to.get_size();
    });
    if (b) return wrap(to, b->data);
  }
  dnnl::memory src = wrap(from, data);
  dnnl::memory dst(to, cpu_engine());
  dnnl::stream stream(cpu_engine());
  dnnl::reorder(src, dst).execute(stream, src, dst);
  stream.wait();
  if (session && session->recording()) {
    session->recording()->add(
        PackedWeights::Buffer{md_bytes(from), md_bytes(to),
                              static_cast<const uint8_t*>(dst.get_data_handle()), to.get_size(),
                              data, from.get_size()},
        std::make_shared<dnnl::memory>(dst));
  }
  return dst;
}

Status run_primitive(const dnnl::primitive& prim, const dnnl::memory::desc& scratchpad_md,
                     std::unordered_map<int, dnnl::memory>& args, OnednnScratch& scratch,
                     int threads, std::string_view what) {
  return dnnl_guard(what, [&]() -> Status {
    OnednnScratch::Impl& s = scratch.impl();
    const size_t need = scratchpad_md.get_size();
    if (need > 0) {
      if (s.capacity < need) scratch.reserve(need);
      args.emplace(DNNL_ARG_SCRATCHPAD, wrap(scratchpad_md, s.buffer));
    }
    ThreadScope scope(threads);
    prim.execute(s.stream, args);
    s.stream.wait();
    return Status::Ok();
  });
}

dnnl::memory::desc with_type(const dnnl::memory::desc& md, dnnl::memory::data_type dt) {
  dnnl_memory_desc_t d = md.data;
  d.data_type = static_cast<dnnl_data_type_t>(dt);
  return dnnl::memory::desc(d);
}

namespace {

// ISAs are sets of bits, not an order (avx2_vnni is numerically above avx512_core_bf16).
bool effective_isa_has(dnnl::cpu_isa want) {
  const auto have = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (have & static_cast<unsigned>(want)) == static_cast<unsigned>(want);
}

}  // namespace

bool cpu_has_bf16() {
  static const bool yes = effective_isa_has(dnnl::cpu_isa::avx512_core_bf16);
  return yes;
}

bool cpu_has_vnni() {
  // Not AVX-VNNI (avx2_vnni): oneDNN 2.6's int8 kernels for AVX2 sum in int16 all the same.
  static const bool yes = effective_isa_has(dnnl::cpu_isa::avx512_core_vnni);
  return yes;
}

// ---- HalfWeights ---------------------------------------------------------------------------

namespace {

MOSS_AVX512F void widen_f16_avx512(const uint16_t* in, float* out, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(h));
  }
  for (; i < n; ++i) out[i] = Float16::to_float(in[i]);
}

MOSS_AVX512F void widen_bf16_avx512(const uint16_t* in, float* out, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i));
    _mm512_storeu_si512(out + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  for (; i < n; ++i) out[i] = BFloat16::from_bits(in[i]);
}

}  // namespace

HalfWeights::HalfWeights(const dnnl::memory& packed, WeightStorage type)
    : md_(packed.get_desc()), type_(type) {
  const size_t n = md_.get_size() / sizeof(float);
  const float* f = static_cast<const float*>(packed.get_data_handle());
  bits_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint16_t h =
        type == WeightStorage::kF16 ? Float16::from_float(f[i]) : BFloat16::from_float(f[i]);
    const float back = type == WeightStorage::kF16 ? Float16::to_float(h)
                                                   : static_cast<float>(BFloat16::from_bits(h));
    // Bit for bit (a NaN never compares equal, and -0 must stay -0).
    if (std::bit_cast<uint32_t>(back) != std::bit_cast<uint32_t>(f[i])) {
      std::vector<uint16_t>().swap(bits_);
      return;
    }
    bits_[i] = h;
  }
}

void HalfWeights::widen(void* dst) const {
  float* out = static_cast<float*>(dst);
  const size_t n = bits_.size();
  if (avx512::host_has_avx512()) {
    if (type_ == WeightStorage::kF16) {
      widen_f16_avx512(bits_.data(), out, n);
    } else {
      widen_bf16_avx512(bits_.data(), out, n);
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    out[i] = type_ == WeightStorage::kF16 ? Float16::to_float(bits_[i])
                                          : static_cast<float>(BFloat16::from_bits(bits_[i]));
  }
}

dnnl::memory weights_for_run(const dnnl::memory& packed, const HalfWeights& half, char* scratch,
                             size_t offset) {
  if (half.empty()) return packed;
  half.widen(scratch + offset);
  return wrap(half.md(), scratch + offset);
}

// ---- Layout -------------------------------------------------------------------------------

Layout::Layout() = default;

Result<Layout> Layout::plain(std::span<const int64_t> dims) {
  Dims d(dims.begin(), dims.end());
  MOSS_RETURN_IF_ERROR(check_dims(d, "plain layout"));
  return dnnl_guard("plain layout",
                    [&]() -> Result<Layout> { return layout_from_md(plain_md(d)); });
}

Result<Layout> Layout::strided(std::span<const int64_t> dims, std::span<const int64_t> strides) {
  Dims d(dims.begin(), dims.end()), st(strides.begin(), strides.end());
  MOSS_RETURN_IF_ERROR(check_dims(d, "strided layout"));
  if (st.size() != d.size())
    return invalid_argument("strided layout: {} strides for {} dims", st.size(), d.size());
  for (int64_t s : st) {
    if (s < 0) return invalid_argument("strided layout: negative stride");
  }
  return dnnl_guard("strided layout", [&]() -> Result<Layout> {
    return layout_from_md(
        dnnl::memory::desc(to_dnnl(d), dnnl::memory::data_type::f32, to_dnnl(st)));
  });
}

bool Layout::is_empty() const { return impl_ == nullptr; }

bool Layout::is_plain() const {
  return impl_ != nullptr &&
         impl_->md == dnnl::memory::desc(to_dnnl(impl_->dims), impl_->md.data_type(),
                                         plain_tag(impl_->dims.size()));
}

Layout Layout::plain_same_type() const {
  if (!impl_) return Layout();
  return layout_from_md(dnnl::memory::desc(to_dnnl(impl_->dims), impl_->md.data_type(),
                                           plain_tag(impl_->dims.size())));
}

const Dims& Layout::dims() const {
  static const Dims kEmpty;
  return impl_ ? impl_->dims : kEmpty;
}

size_t Layout::bytes() const { return impl_ ? impl_->md.get_size() : 0; }

std::string Layout::to_string() const {
  if (!impl_) return "(empty)";
  std::string s = fmt::format("{}", fmt::join(impl_->dims, "x"));
  if (is_plain()) return s + " plain";
  const dnnl_memory_desc_t& d = impl_->md.data;
  if (d.format_kind != dnnl_blocked) return s + " opaque";
  const dnnl_blocking_desc_t& b = d.format_desc.blocking;
  s += " blocked(strides";
  for (int i = 0; i < d.ndims; ++i) s += fmt::format(" {}", b.strides[i]);
  for (int i = 0; i < b.inner_nblks; ++i) {
    s += fmt::format("; dim{} by {}", b.inner_idxs[i], b.inner_blks[i]);
  }
  return s + ")";
}

bool Layout::operator==(const Layout& other) const {
  if (!impl_ || !other.impl_) return impl_ == other.impl_;
  return impl_->md == other.impl_->md;
}

// ---- OnednnScratch ------------------------------------------------------------------------

OnednnScratch::OnednnScratch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OnednnScratch::OnednnScratch(OnednnScratch&&) noexcept = default;
OnednnScratch& OnednnScratch::operator=(OnednnScratch&&) noexcept = default;
OnednnScratch::~OnednnScratch() = default;

Result<OnednnScratch> OnednnScratch::create() {
  return dnnl_guard("creating oneDNN stream", [&]() -> Result<OnednnScratch> {
    auto impl = std::make_unique<Impl>();
    impl->stream = dnnl::stream(cpu_engine());
    return OnednnScratch(std::move(impl));
  });
}

void OnednnScratch::reserve(size_t bytes) {
  if (bytes <= impl_->capacity) return;
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) throw std::bad_alloc();  // OOM crashes by convention
  std::free(impl_->buffer);
  impl_->buffer = p;
  impl_->capacity = rounded;
}

size_t OnednnScratch::capacity() const { return impl_->capacity; }

dnnl::reorder layout_reorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::reorder::primitive_desc pd(cpu_engine(), from, cpu_engine(), to, attr);
  if (pd.scratchpad_desc().get_size() != 0) {
    throw dnnl::error(dnnl_unimplemented, "reorder needs a scratchpad");
  }
  return dnnl::reorder(pd);
}

}  // namespace moss::engine::onednn
