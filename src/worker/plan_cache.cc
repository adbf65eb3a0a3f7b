#include "worker/plan_cache.h"

#include "common/encoding.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "crypto/hash.h"
#include "crypto/hkdf.h"
#include "crypto/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <istream>
#include <ostream>
#include <streambuf>

namespace moss::worker {
namespace {

constexpr char kMagic[8] = {'M', 'O', 'S', 'S', 'P', 'L', 'A', 'N'};
constexpr uint16_t kVersion = 3;  // 3: the snapshot records the half plan (MPS2)
constexpr size_t kPrefix = 8 + 2 + 4;
constexpr uint32_t kMaxHeader = 64 << 10;
constexpr uint64_t kMaxEntry = uint64_t{16} << 30;
constexpr std::string_view kInfo = "moss plan cache v3";

std::string header_text(const PlanCacheKey& k) {
  nlohmann::ordered_json j = {{"model_id", k.model_id},
                              {"model_file_random", hex_encode(k.model_file_random)},
                              {"model_file_size", k.model_file_size},
                              {"model_key_version", k.model_key_version},
                              {"threads", k.threads},
                              {"build_id", k.build_id},
                              {"cpu_features", k.cpu_features}};
  return j.dump();
}

std::vector<uint8_t> prefix_for(std::string_view header) {
  std::vector<uint8_t> out(kMagic, kMagic + 8);
  out.push_back(kVersion >> 8);
  out.push_back(kVersion & 0xff);
  const auto n = static_cast<uint32_t>(header.size());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(n >> s));
  out.insert(out.end(), header.begin(), header.end());
  return out;
}

Result<SecretBytes> payload_key(std::span<const uint8_t> model_key, std::span<const uint8_t> head) {
  const Sha256Digest salt = sha256(head);
  return crypto::hkdf_sha256(model_key, salt,
                             {reinterpret_cast<const uint8_t*>(kInfo.data()), kInfo.size()},
                             crypto::kModelKeySize);
}

// Which field of the entry's header differs from what this load needs ("" when none).
std::string mismatch(const nlohmann::json& h, const PlanCacheKey& k) {
  auto str = [&](const char* f) { return h.contains(f) && h[f].is_string() ? h[f].get<std::string>() : ""; };
  auto num = [&](const char* f) -> int64_t {
    return h.contains(f) && h[f].is_number_integer() ? h[f].get<int64_t>() : -1;
  };
  if (str("model_id") != k.model_id) return "it is for another model";
  if (str("model_file_random") != hex_encode(k.model_file_random) ||
      num("model_file_size") != static_cast<int64_t>(k.model_file_size)) {
    return "it was compiled from another model file (the file was replaced or re-encrypted)";
  }
  if (num("threads") != k.threads) return "it was compiled for another thread count";
  if (str("build_id") != k.build_id) return "it was compiled by another engine build";
  if (str("cpu_features") != k.cpu_features) return "it was compiled on a CPU with other features";
  return "";
}

// A read-only mapping of a whole file.
struct Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data) munmap(const_cast<uint8_t*>(data), size);
  }
};

// A file descriptor closed when it goes out of scope (the payload is read after the headers).
struct OpenFile {
  int fd;
  explicit OpenFile(int f) : fd(f) {}
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
  int operator*() const { return fd; }
};

// The rest of an open file from `offset`, read with pread(2) straight into the reader's buffer:
// decrypting the entry through a mapping of it faulted in every page-cache page of it (~50 ms
// per 100 MB on a quiet 2-vCPU VM, several times that under load), where reading costs a copy.
class FdReader : public std::streambuf {
 public:
  FdReader(int fd, off_t offset) : fd_(fd), offset_(offset) {}

 protected:
  std::streamsize xsgetn(char* s, std::streamsize n) override {
    std::streamsize got = 0;
    if (gptr() < egptr() && n > 0) {  // the byte a peek() read ahead
      *s = *gptr();
      gbump(1);
      got = 1;
    }
    while (got < n) {
      const ssize_t r = ::pread(fd_, s + got, static_cast<size_t>(n - got), offset_);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      offset_ += r;
      got += r;
    }
    return got;
  }
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    ssize_t r;
    do {
      r = ::pread(fd_, &ahead_, 1, offset_);
    } while (r < 0 && errno == EINTR);
    if (r != 1) return traits_type::eof();
    ++offset_;
    setg(&ahead_, &ahead_, &ahead_ + 1);
    return traits_type::to_int_type(ahead_);
  }

 private:
  int fd_;
  off_t offset_;
  char ahead_ = 0;
};

// Writes into a fixed span; writing past its end fails the stream.
class SpanWriter : public std::streambuf {
 public:
  explicit SpanWriter(std::span<uint8_t> out) : out_(out) {}
  size_t written() const { return at_; }

 protected:
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (static_cast<size_t>(n) > out_.size() - at_) return 0;
    std::memcpy(out_.data() + at_, s, static_cast<size_t>(n));
    at_ += static_cast<size_t>(n);
    return n;
  }
  int_type overflow(int_type) override { return traits_type::eof(); }

 private:
  std::span<uint8_t> out_;
  size_t at_ = 0;
};

// 64-byte aligned plaintext that is wiped when freed (packed weights are the owner's secret).
struct AlignedSecret {
  uint8_t* data = nullptr;
  size_t size = 0;
  explicit AlignedSecret(size_t n) : size(n) {
    data = static_cast<uint8_t*>(std::aligned_alloc(64, std::max<size_t>(64, (n + 63) / 64 * 64)));
    if (!data) throw std::bad_alloc();
  }
  ~AlignedSecret() {
    secure_wipe(data, size);
    std::free(data);
  }
  AlignedSecret(const AlignedSecret&) = delete;
  AlignedSecret& operator=(const AlignedSecret&) = delete;
};

}  // namespace

PlanCache::PlanCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

PlanCache::~PlanCache() { wait(); }

std::filesystem::path PlanCache::path_for(const std::string& model_id) const {
  const auto d = sha256({reinterpret_cast<const uint8_t*>(model_id.data()), model_id.size()});
  return dir_ / (hex_encode(d) + ".plan");
}

bool PlanCache::has_entry(const std::string& model_id) const {
  if (!enabled()) return false;
  std::error_code ec;
  return std::filesystem::is_regular_file(path_for(model_id), ec);
}

std::shared_ptr<const engine::PlanSnapshot> PlanCache::load(const PlanCacheKey& key,
                                                            std::span<const VersionedKey> model_keys,
                                                            std::string* reason) const {
  if (reason) reason->clear();
  if (!enabled()) return nullptr;
  const auto path = path_for(key.model_id);
  auto ignore = [&](const std::string& why) -> std::shared_ptr<const engine::PlanSnapshot> {
    log::get("worker")->warn("plan cache entry for {} ignored, compiling afresh: {}", key.model_id, why);
    if (reason) *reason = why;
    return nullptr;
  };
  const OpenFile fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (*fd < 0) return nullptr;  // no entry yet: not worth a log line
  struct stat st {};
  Mapping map;
  if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) return ignore("not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxEntry) return ignore("larger than the 16 GiB limit");
  // Mapped for the headers and the sizes they give (a few pages touched); the payload is read.
  map.size = static_cast<size_t>(st.st_size);
  if (map.size > 0) {
    void* p = mmap(nullptr, map.size, PROT_READ, MAP_PRIVATE, *fd, 0);
    if (p != MAP_FAILED) map.data = static_cast<const uint8_t*>(p);
  }
  if (!map.data) return ignore("cannot map it");
  if (map.size < kPrefix || std::memcmp(map.data, kMagic, 8) != 0) return ignore("not a plan file");
  const uint16_t version = static_cast<uint16_t>(map.data[8] << 8 | map.data[9]);
  if (version != kVersion) return ignore("another format version");
  uint32_t hlen = 0;
  for (int i = 10; i < 14; ++i) hlen = (hlen << 8) | map.data[i];
  if (hlen > kMaxHeader || hlen > map.size - kPrefix) return ignore("truncated header");
  const std::span<const uint8_t> head(map.data, kPrefix + hlen);
  const auto header = nlohmann::json::parse(head.begin() + kPrefix, head.end(), nullptr, false);
  if (!header.is_object()) return ignore("unreadable header");
  if (std::string m = mismatch(header, key); !m.empty()) return ignore(m);
  const VersionedKey* model_key = nullptr;
  if (header.contains("model_key_version") && header["model_key_version"].is_number_unsigned()) {
    for (const VersionedKey& v : model_keys) {
      if (v.version == header["model_key_version"].get<uint64_t>()) model_key = &v;
    }
  }
  if (!model_key) return ignore("its model key version is not among the released keys (retired or deleted)");
  auto k = payload_key(model_key->key.span(), head);
  if (!k.ok()) return ignore("cannot derive its key");
  const std::span<const uint8_t> payload(map.data + head.size(), map.size - head.size());
  auto size = crypto::decrypted_model_size(payload);
  if (!size.ok()) return ignore("truncated");
  std::shared_ptr<AlignedSecret> plain;
  try {
    plain = std::make_shared<AlignedSecret>(*size);
  } catch (const std::bad_alloc&) {
    return ignore("out of memory");
  }
  FdReader reader(*fd, static_cast<off_t>(head.size()));
  SpanWriter writer({plain->data, plain->size});
  std::istream in(&reader);
  std::ostream out(&writer);
  Status s = crypto::decrypt_model_stream(k->span(), key.model_id, in, out);
  // The file may have changed since it was mapped: exactly the size its header gave, or nothing.
  if (!s.ok() || writer.written() != plain->size) {
    return ignore("it does not authenticate (tampered, truncated or another key)");
  }
  auto snapshot = engine::PlanSnapshot::parse(plain, {plain->data, plain->size});
  if (!snapshot.ok()) return ignore("its snapshot does not parse: reason=" + snapshot.status().reason());
  return *snapshot;
}

Status PlanCache::store(const PlanCacheKey& key, std::span<const uint8_t> model_key,
                        const engine::PlanSnapshot& snapshot) const {
  if (!enabled()) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return unavailable("plan cache: cannot create {}: {}", dir_.string(), ec.message());
  std::vector<uint8_t> file = prefix_for(header_text(key));
  const size_t head = file.size();
  MOSS_ASSIGN_OR_RETURN(SecretBytes k, payload_key(model_key, file));
  std::vector<uint8_t> plain = snapshot.serialize();
  const uint64_t n = crypto::encrypted_model_size(key.model_id, plain.size(), crypto::kDefaultChunkSize);
  file.resize(head + n);
  crypto::ModelEncryptOptions options;
  Status s = crypto::encrypt_model_into(k.span(), key.model_id, plain, options,
                                        {file.data() + head, static_cast<size_t>(n)});
  secure_wipe(plain);
  MOSS_RETURN_IF_ERROR(s);
  return write_file(path_for(key.model_id), file, 0600);
}

void PlanCache::store_in_background(PlanCacheKey key, SecretBytes model_key,
                                    std::shared_ptr<const engine::PlanSnapshot> snapshot) {
  if (!enabled() || !snapshot) return;
  std::lock_guard<std::mutex> lock(mu_);
  writers_.emplace_back([this, key = std::move(key), model_key = std::move(model_key),
                         snapshot = std::move(snapshot)]() mutable {
    Status s = store(key, model_key.span(), *snapshot);
    // Code and reason only: the message may name the cache directory.
    if (!s.ok()) {
      log::get("worker")->warn("plan cache: {} not written: code={} reason={}", key.model_id,
                               error_code_name(s.code()), s.reason().empty() ? "-" : s.reason());
    }
    snapshot.reset();
  });
}

void PlanCache::remove(const std::string& model_id) const {
  if (!enabled()) return;
  std::error_code ec;
  std::filesystem::remove(path_for(model_id), ec);
}

void PlanCache::wait() {
  std::vector<std::thread> writers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writers.swap(writers_);
  }
  for (auto& t : writers) t.join();
}

}  // namespace moss::worker
