// sgemm: oneDNN's JIT matrix multiply (runtime ISA dispatch) for kernels whose loops are
// matrix-vector products over a sequence, e.g. the recurrent cells, where a primitive per shape
// would not pay off.
#include "engine/kernels/onednn/onednn_common.h"

#include <oneapi/dnnl/dnnl.h>

namespace moss::engine::onednn {

Status sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
             int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m < 0 || n < 0 || k < 0 || !a || !b || !c) return invalid_argument("sgemm: bad arguments");
  if (m == 0 || n == 0) return Status::Ok();
  if (k == 0) {  // an empty product; oneDNN refuses the zero leading dimensions it implies
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    }
    return Status::Ok();
  }
  ThreadScope threads(1);  // a reference kernel's caller is single-threaded; results stay fixed
  const dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, 1.0f, a,
                                     lda, b, ldb, beta, c, ldc);
  if (s != dnnl_success) return internal_error("sgemm {}x{}x{}: oneDNN status {}", m, n, k, static_cast<int>(s));
  return Status::Ok();
}

}  // namespace moss::engine::onednn
