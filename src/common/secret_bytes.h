// SecretBytes: the only container for key material (style convention 6).
//
// Move-only, wiped with OPENSSL_cleanse when destroyed or reassigned, compared in constant time,
// and deliberately not printable: there is no operator<< and no formatter, so a key cannot end
// up in a log line by accident. Not thread-safe (a value type).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace moss {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);
  explicit SecretBytes(std::span<const uint8_t> bytes);
  ~SecretBytes();

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  // An explicit copy, so that duplicating key material is visible at the call site.
  SecretBytes clone() const { return SecretBytes(span()); }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  std::span<uint8_t> span() { return bytes_; }
  std::span<const uint8_t> span() const { return bytes_; }

  // Constant-time equality (CRYPTO_memcmp); sizes are not secret.
  bool equals(std::span<const uint8_t> other) const;

  void wipe();

 private:
  std::vector<uint8_t> bytes_;
};

// Wipes any buffer that held plaintext or key material.
void secure_wipe(void* data, size_t size);
template <typename Container>
void secure_wipe(Container& c) {
  if (!c.empty()) secure_wipe(c.data(), c.size() * sizeof(c[0]));
}

// Constant-time comparison of two byte ranges (false when sizes differ).
bool constant_time_equal(std::span<const uint8_t> a, std::span<const uint8_t> b);

}  // namespace moss
