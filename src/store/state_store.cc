#include "store/state_store.h"

#include <algorithm>

namespace moss::store {

int Table::column_index(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (column == columns[i].name) return static_cast<int>(i);
  }
  return -1;
}

void SeenHeads::saw(uint64_t read, const StateHeadView& head) {
  std::lock_guard lock(mu_);
  // The newest head seen is at least as new as what this read saw, so it may go out to every
  // request whose ticket this read's number reaches.
  if (head.version > head_.version) head_ = head;
  through_ = std::max(through_, read);
}

std::optional<StateHeadView> SeenHeads::since(uint64_t ticket) const {
  std::lock_guard lock(mu_);
  if (through_ < ticket) return std::nullopt;
  return head_;
}

StateHeadView SeenHeads::newest() const {
  std::lock_guard lock(mu_);
  return head_;
}

}  // namespace moss::store
