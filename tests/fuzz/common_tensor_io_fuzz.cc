// libFuzzer target for the untrusted-input readers of src/common: .npy, safetensors, TensorProto
// and JSON configuration files. Besides "no crash, no sanitizer report", it checks that whatever
// a reader accepts survives a write/read round trip unchanged.
#include "common/config.h"
#include "common/npy.h"
#include "common/safetensors.h"
#include "common/tensor_proto.h"

#include <cstdlib>
#include <string_view>

namespace {

void check_npy(std::span<const uint8_t> bytes) {
  auto t = moss::read_npy(bytes);
  if (!t.ok()) return;
  auto written = moss::write_npy(*t);
  if (!written.ok()) std::abort();
  auto back = moss::read_npy(*written);
  if (!back.ok() || !back->equals(*t)) std::abort();
}

void check_safetensors(std::span<const uint8_t> bytes) {
  auto b = moss::read_safetensors(bytes);
  if (!b.ok()) return;
  auto written = moss::write_safetensors(*b);
  if (!written.ok()) return;  // e.g. a name the writer refuses; reading it was still safe
  auto back = moss::read_safetensors(*written);
  if (!back.ok() || back->size() != b->size() || back->metadata() != b->metadata()) std::abort();
  for (size_t i = 0; i < b->size(); ++i) {
    if (back->tensors()[i].name != b->tensors()[i].name ||
        !back->tensors()[i].tensor.equals(b->tensors()[i].tensor)) {
      std::abort();
    }
  }
}

void check_config(std::span<const uint8_t> bytes) {
  static const std::vector<moss::SettingSpec> specs = {
      {"a.port", moss::SettingType::kInt, "1", ""},
      {"a.ttl", moss::SettingType::kDuration, "1s", ""},
      {"a.size", moss::SettingType::kBytes, "1", ""},
      {"a.on", moss::SettingType::kBool, "false", ""},
      {"b.name", moss::SettingType::kString, std::nullopt, "", true},
  };
  auto c = moss::Config::create(specs);
  if (!c.ok()) std::abort();
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (c->load_json(text, "fuzz").ok()) {
    (void)c->validate();
    (void)c->dump();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> bytes(data, size);
  check_npy(bytes);
  check_safetensors(bytes);
  (void)moss::read_tensor_proto(bytes);
  check_config(bytes);
  return 0;
}
