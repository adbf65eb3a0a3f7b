// libFuzzer target: arbitrary bytes through the ONNX loader and the compiler (folding, shape
// inference, planning). Any input must yield a model or an error Status, never a crash.
#include "engine/runtime/compiled_model.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moss::engine::CompileOptions options;
  options.limits.max_nodes = 4096;
  auto model = moss::engine::CompiledModel::compile({data, size}, options);
  if (model.ok()) {
    (void)(*model)->weights_bytes();
  }
  return 0;
}
