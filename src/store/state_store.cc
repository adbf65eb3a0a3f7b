#include "store/state_store.h"

namespace moss::store {

int Table::column_index(std::string_view column) const {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (column == columns[i].name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace moss::store
