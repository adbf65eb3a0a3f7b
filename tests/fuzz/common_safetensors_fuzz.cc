// libFuzzer target for the safetensors reader (common/safetensors.h): any input yields a bundle or
// an error; an accepted bundle survives write/read unchanged. (common_tensor_io_fuzz also feeds
// safetensors, among other formats; this target keeps a corpus of its own.)
#include "common/safetensors.h"

#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bundle = moss::read_safetensors({data, size});
  if (!bundle.ok()) return 0;
  auto written = moss::write_safetensors(*bundle);
  if (!written.ok()) return 0;  // a name or metadata the writer refuses: reading it was still safe
  auto back = moss::read_safetensors(*written);
  if (!back.ok() || back->size() != bundle->size() || back->metadata() != bundle->metadata()) std::abort();
  for (size_t i = 0; i < bundle->size(); ++i) {
    if (back->tensors()[i].name != bundle->tensors()[i].name ||
        !back->tensors()[i].tensor.equals(bundle->tensors()[i].tensor))
      std::abort();
  }
  return 0;
}
