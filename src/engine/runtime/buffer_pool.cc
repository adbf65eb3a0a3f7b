#include "engine/runtime/buffer_pool.h"

#include <algorithm>
#include <cstring>

namespace moss::engine {

Result<std::shared_ptr<Tensor>> BufferPool::acquire(DType dtype, std::span<const int64_t> shape) {
  MOSS_ASSIGN_OR_RETURN(int64_t numel, checked_numel(shape, dtype));
  auto& bucket = buckets_[{dtype, numel}];
  for (const auto& t : bucket) {
    if (t.use_count() == 1 && std::equal(shape.begin(), shape.end(), t->shape().begin(), t->shape().end())) {
      // Kernels write every output element, but a value starts zeroed wherever it comes from.
      if (t->nbytes() > 0) std::memset(t->raw(), 0, t->nbytes());
      return t;
    }
  }
  MOSS_ASSIGN_OR_RETURN(Tensor fresh, Tensor::zeros(dtype, std::vector<int64_t>(shape.begin(), shape.end())));
  auto t = std::make_shared<Tensor>(std::move(fresh));
  bucket.push_back(t);
  ++allocations_;
  held_bytes_ += t->nbytes();
  if (held_bytes_ > trim_at_) trim();
  return t;
}

void BufferPool::trim() {
  size_t live = 0, idle = 0;
  for (const auto& [key, bucket] : buckets_) {
    for (const auto& t : bucket) (t.use_count() > 1 ? live : idle) += t->nbytes();
  }
  for (auto it = buckets_.begin(); it != buckets_.end() && idle > live;) {
    auto& bucket = it->second;
    for (size_t i = bucket.size(); i-- > 0 && idle > live;) {
      if (bucket[i].use_count() != 1) continue;
      idle -= bucket[i]->nbytes();
      bucket.erase(bucket.begin() + static_cast<std::ptrdiff_t>(i));
    }
    it = bucket.empty() ? buckets_.erase(it) : std::next(it);
  }
  held_bytes_ = live + idle;
  trim_at_ = std::max(kFirstTrim, 2 * held_bytes_);
}

}  // namespace moss::engine
