// MatMulInteger on oneDNN's int8 matmul (u8 or s8 A, constant s8 B, int32 result): the dynamic
// quantization of transformers (DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul). B's zero
// points are folded into B (B - b_zp[n] must fit int8, else the reference kernel runs); A's zero
// point is read per request (DynamicQuantizeLinear computes it). A's batch dims fold into M.
#include "engine/kernels/onednn/onednn_common.h"
#include "engine/quant/int8_weights.h"
#include "engine/quant/quant_kernels.h"

namespace moss::engine {
namespace {

using namespace onednn;
using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

class QMatmulKernel final : public PreparedKernel {
 public:
  dnnl::matmul prim;
  dnnl::memory::desc scratchpad_md, a_md, dst_md, zp_md{{1}, dt::s32, tag::x};
  dnnl::memory b;
  bool a_zp_input = false;  // A's zero point is input 2 (read per request)
  bool a_unsigned = true;
  int threads = 1;

  size_t scratch_bytes() const override { return scratchpad_md.get_size(); }
  size_t weights_bytes() const override { return b.get_desc().get_size(); }
  uint32_t packed_inputs() const override { return 0b1010u; }  // B and its zero point
  std::string_view kind() const override { return kInt8Kind; }

  Status run(std::span<const View> in, std::span<const View> out, RunScratch& s) const override {
    if (!s.dnnl) return internal_error("MatMulInteger: no oneDNN scratch in this context");
    int32_t zp = 0;
    if (a_zp_input && in.size() > 2 && in[2].data) {
      zp = a_unsigned ? in[2].as<uint8_t>()[0] : in[2].as<int8_t>()[0];
    }
    return dnnl_guard("MatMulInteger", [&]() -> Status {
      std::unordered_map<int, dnnl::memory> args;
      args.reserve(6);
      args.emplace(DNNL_ARG_SRC, wrap(a_md, in[0].data));
      args.emplace(DNNL_ARG_WEIGHTS, b);
      args.emplace(DNNL_ARG_DST, wrap(dst_md, out[0].data));
      args.emplace(DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, wrap(zp_md, &zp));
      return run_primitive(prim, scratchpad_md, args, *s.dnnl, threads, "MatMulInteger");
    });
  }
};

}  // namespace

std::unique_ptr<const PreparedKernel> prepare_qmatmul_integer(const Node& node,
                                                              std::span<const TensorInfo* const> in,
                                                              const std::vector<TensorInfo>& out,
                                                              int threads) {
  (void)node;
  if (!cpu_has_vnni()) return nullptr;  // int16 partial sums would saturate (onednn_ops.h)
  if (in.size() < 2 || !in[0] || !in[1] || !in[1]->value || out.empty()) return nullptr;
  const TensorInfo& A = *in[0];
  const Tensor& B = *in[1]->value;
  if (A.shape.size() < 2 || B.rank() != 2 || out[0].dtype != DType::kInt32) return nullptr;
  if (A.dtype != DType::kUInt8 && A.dtype != DType::kInt8) return nullptr;
  const TensorInfo* azp = in.size() > 2 ? in[2] : nullptr;
  const TensorInfo* bzp = in.size() > 3 ? in[3] : nullptr;
  if (azp && azp->numel() != 1) return nullptr;  // per-row A zero points: reference
  if (bzp && !bzp->value) return nullptr;
  const int64_t k = B.shape()[0], n = B.shape()[1];
  if (A.shape.back() != k) return nullptr;
  const std::optional<std::vector<int8_t>> bq = pack_int8_b(B, bzp ? bzp->value.get() : nullptr, k, n);
  if (!bq) return nullptr;
  const int64_t rows = A.numel() / k;
  auto q = std::make_unique<QMatmulKernel>();
  q->a_unsigned = A.dtype == DType::kUInt8;
  q->a_zp_input = azp != nullptr;
  const bool ok = dnnl_guard("MatMulInteger", [&]() -> Status {
                    q->a_md = dnnl::memory::desc({rows, k}, q->a_unsigned ? dt::u8 : dt::s8, tag::ab);
                    q->dst_md = dnnl::memory::desc({rows, n}, dt::s32, tag::ab);
                    const dnnl::memory::desc b_user({k, n}, dt::s8, tag::ab),
                        b_any({k, n}, dt::s8, tag::any);
                    dnnl::primitive_attr attr;
                    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
                    attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
                    q->threads = resolve_threads(threads);
                    ThreadScope scope(q->threads);
                    dnnl::matmul::desc desc(q->a_md, b_any, q->dst_md);
                    dnnl::matmul::primitive_desc pd(desc, attr, cpu_engine());
                    q->prim = dnnl::matmul(pd);
                    q->scratchpad_md = pd.scratchpad_desc();
                    q->b = pack(b_user, bq->data(), pd.weights_desc());
                    return Status::Ok();
                  }).ok();
  if (!ok) return nullptr;
  return q;
}

}  // namespace moss::engine
