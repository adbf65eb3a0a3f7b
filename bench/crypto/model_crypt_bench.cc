// model_crypt_bench: what the encrypted model format costs over raw AES-256-GCM.
//
// Encrypts and decrypts one in-memory buffer (default 256 MiB) with the model file format
// (encrypt_model_into / decrypt_model_into, default 1 MiB chunks) and, in the same run and on
// the same buffers, with one raw AES-256-GCM seal/open over the whole buffer. Runs alternate
// and the best of --reps is kept, so noise from other processes on a shared machine hurts both
// sides alike. Prints GB/s (10^9 bytes of plaintext per second) and format/raw time ratios.
//
// Usage: model_crypt_bench [--size-mib N] [--chunk-kib N] [--reps N]
#include "crypto/aead.h"
#include "crypto/model_file.h"
#include "crypto/random.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double seconds(const std::function<void()>& fn) {
  auto t0 = Clock::now();
  fn();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void must(const moss::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "model_crypt_bench: %s: %s\n", what, s.to_string().c_str());
    std::exit(1);
  }
}

long arg_value(int argc, char** argv, const char* name, long fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::strtol(argv[i + 1], nullptr, 10);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace moss::crypto;
  const size_t size = static_cast<size_t>(arg_value(argc, argv, "--size-mib", 256)) << 20;
  const uint32_t chunk = static_cast<uint32_t>(arg_value(argc, argv, "--chunk-kib", 1024) << 10);
  const int reps = static_cast<int>(arg_value(argc, argv, "--reps", 5));
  const std::string model_id = "0123456789abcdef0123456789abcdef/bench";

  auto key = std::move(random_secret(32)).value_or_die();
  std::vector<uint8_t> plain(size);
  must(random_bytes(plain), "random plaintext");
  std::vector<uint8_t> file(encrypted_model_size(model_id, size, chunk));
  std::vector<uint8_t> out(size);
  std::vector<uint8_t> raw_ct(size);
  std::array<uint8_t, 12> nonce{};
  std::array<uint8_t, 16> tag{};
  auto aead = std::move(AesGcm::create(key.span())).value_or_die();
  ModelEncryptOptions opts;
  opts.chunk_size = chunk;

  double best_raw_enc = 1e30, best_raw_dec = 1e30, best_enc = 1e30, best_dec = 1e30;
  for (int r = 0; r < reps; ++r) {
    best_raw_enc = std::min(best_raw_enc, seconds([&] {
      must(aead.seal(nonce, {}, plain, raw_ct, tag), "raw seal");
    }));
    best_enc = std::min(best_enc, seconds([&] {
      must(encrypt_model_into(key.span(), model_id, plain, opts, file), "format encrypt");
    }));
    best_raw_dec = std::min(best_raw_dec, seconds([&] {
      must(aead.open(nonce, {}, raw_ct, tag, out), "raw open");
    }));
    best_dec = std::min(best_dec, seconds([&] {
      must(decrypt_model_into(key.span(), model_id, file, out), "format decrypt");
    }));
  }
  if (std::memcmp(out.data(), plain.data(), size) != 0) {
    std::fprintf(stderr, "model_crypt_bench: round trip mismatch\n");
    return 1;
  }
  auto gbps = [&](double s) { return static_cast<double>(size) / s / 1e9; };
  std::printf("model_crypt_bench: %zu MiB buffer, %u KiB chunks, best of %d\n", size >> 20,
              chunk >> 10, reps);
  std::printf("  raw AES-256-GCM seal   %6.2f GB/s\n", gbps(best_raw_enc));
  std::printf("  model file encrypt     %6.2f GB/s   format/raw time %.3f\n", gbps(best_enc),
              best_enc / best_raw_enc);
  std::printf("  raw AES-256-GCM open   %6.2f GB/s\n", gbps(best_raw_dec));
  std::printf("  model file decrypt     %6.2f GB/s   format/raw time %.3f\n", gbps(best_dec),
              best_dec / best_raw_dec);
  bool ok = best_enc / best_raw_enc <= 1.2 && best_dec / best_raw_dec <= 1.2;
  std::printf("  goal (format costs <= 20%% over raw): %s\n", ok ? "met" : "NOT met");
  return 0;
}
