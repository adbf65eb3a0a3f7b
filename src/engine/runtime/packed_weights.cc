#include "engine/runtime/packed_weights.h"

#include <cpuid.h>
#include <elf.h>
#include <link.h>
#include <oneapi/dnnl/dnnl.h>

#include <fmt/format.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>

namespace moss::engine {
namespace {

constexpr char kMagic[4] = {'M', 'P', 'W', '1'};
constexpr size_t kAlign = 64;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The GNU build id note of the main program, hex; empty without one.
std::string gnu_build_id() {
  std::string id;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* out) -> int {
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const auto* p = reinterpret_cast<const uint8_t*>(info->dlpi_addr + ph.p_vaddr);
          const uint8_t* end = p + ph.p_memsz;
          while (p + sizeof(ElfW(Nhdr)) <= end) {
            const auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
            const uint8_t* name = p + sizeof(ElfW(Nhdr));
            const uint8_t* desc = name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
                std::memcmp(name, "GNU", 4) == 0 && desc + nh->n_descsz <= end) {
              auto* s = static_cast<std::string*>(out);
              for (uint32_t j = 0; j < nh->n_descsz; ++j) *s += fmt::format("{:02x}", desc[j]);
              return 1;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
          }
        }
        return 1;  // only the first object: the program itself
      },
      &id);
  return id;
}

}  // namespace

const std::string& engine_build_id() {
  static const std::string id = [] {
    std::string program = gnu_build_id();
    if (program.empty()) {
      // No build id note: the executable's bytes stand in for it.
      std::ifstream f("/proc/self/exe", std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      program = fmt::format("exe-{:016x}-{}", std::hash<std::string>{}(bytes), bytes.size());
    }
    const dnnl_version_t* v = dnnl_version();
    return fmt::format("{} onednn-{}.{}.{}-{}", program, v->major, v->minor, v->patch, v->hash);
  }();
  return id;
}

const std::string& cpu_feature_set() {
  static const std::string features = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    std::string s = "cpuid";
    __get_cpuid(1, &a, &b, &c, &d);
    s += fmt::format(" 1:{:08x}.{:08x}", c, d);
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) s += fmt::format(" 7:{:08x}.{:08x}.{:08x}", b, c, d);
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) s += fmt::format(" 7.1:{:08x}", a);
    // oneDNN may be capped below the CPU (ONEDNN_MAX_CPU_ISA): what it uses is what matters.
    s += fmt::format(" isa:{:x}", static_cast<unsigned>(dnnl_get_effective_cpu_isa()));
    return s;
  }();
  return features;
}

size_t PackedWeights::bytes() const {
  size_t n = 0;
  for (const Buffer& b : buffers_) n += b.size;
  return n;
}

void PackedWeights::add(Buffer buffer, std::shared_ptr<const void> keep) {
  buffers_.push_back(std::move(buffer));
  keep_.push_back(std::move(keep));
}

std::vector<uint8_t> PackedWeights::serialize() const {
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  put_u64(out, buffers_.size());
  size_t offset = 0;
  for (const Buffer& b : buffers_) {
    for (const std::string* md : {&b.from_md, &b.to_md}) {
      put_u64(out, md->size());
      out.insert(out.end(), md->begin(), md->end());
    }
    put_u64(out, offset);
    put_u64(out, b.size);
    offset = align_up(offset + b.size);
  }
  const size_t blob = align_up(out.size() + 8);
  put_u64(out, blob);
  out.resize(blob + offset, 0);
  offset = 0;
  for (const Buffer& b : buffers_) {
    if (b.size > 0) std::memcpy(out.data() + blob + offset, b.data, b.size);
    offset = align_up(offset + b.size);
  }
  return out;
}

Result<std::shared_ptr<const PackedWeights>> PackedWeights::parse(std::shared_ptr<const void> storage,
                                                                  std::span<const uint8_t> bytes) {
  size_t at = 0;
  auto need = [&](size_t n) { return n <= bytes.size() && at <= bytes.size() - n; };
  auto u64 = [&](uint64_t& v) {
    if (!need(8)) return false;
    v = get_u64(bytes.data() + at);
    at += 8;
    return true;
  };
  if (!need(4) || std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return invalid_argument("packed weights: bad magic");
  }
  at = 4;
  uint64_t count = 0;
  if (!u64(count) || count > bytes.size()) return invalid_argument("packed weights: bad count");
  auto pw = std::make_shared<PackedWeights>();
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint64_t i = 0; i < count; ++i) {
    Buffer b;
    for (std::string* md : {&b.from_md, &b.to_md}) {
      uint64_t n = 0;
      if (!u64(n) || n != sizeof(dnnl_memory_desc_t) || !need(n)) {
        return invalid_argument("packed weights: buffer {} has a bad descriptor", i);
      }
      md->assign(reinterpret_cast<const char*>(bytes.data() + at), n);
      at += n;
    }
    uint64_t offset = 0, size = 0;
    if (!u64(offset) || !u64(size)) return invalid_argument("packed weights: index truncated");
    ranges.emplace_back(offset, size);
    pw->buffers_.push_back(std::move(b));
  }
  uint64_t blob = 0;
  if (!u64(blob) || blob < at || blob > bytes.size() || blob % kAlign != 0) {
    return invalid_argument("packed weights: bad data offset");
  }
  const uint64_t room = bytes.size() - blob;
  for (size_t i = 0; i < ranges.size(); ++i) {
    const auto [offset, size] = ranges[i];
    if (offset > room || size > room - offset) {
      return invalid_argument("packed weights: buffer {} lies outside the data", i);
    }
    pw->buffers_[i].data = bytes.data() + blob + offset;
    pw->buffers_[i].size = size;
  }
  pw->keep_.push_back(std::move(storage));
  return std::shared_ptr<const PackedWeights>(std::move(pw));
}

namespace {
thread_local PackSession* g_session = nullptr;
}

PackSession::PackSession(const PackedWeights* replay, PackedWeights* record)
    : replay_(replay), record_(record), previous_(g_session) {
  g_session = this;
}

PackSession::~PackSession() { g_session = previous_; }

PackSession* PackSession::current() { return g_session; }

}  // namespace moss::engine
