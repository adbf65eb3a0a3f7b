// 16-bit floating-point storage types (IEEE binary16 and bfloat16). Stored as their 16 bits,
// computed in float: arithmetic converts to float (implicitly), and a result converts back with
// round-to-nearest-even, as ONNX Runtime's CPU kernels do.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace moss {

struct Float16 {
  uint16_t bits = 0;
  Float16() = default;
  Float16(float f) : bits(from_float(f)) {}  // NOLINT: implicit, like a float narrowing
  operator float() const { return to_float(bits); }
  static Float16 from_bits(uint16_t b) {
    Float16 h;
    h.bits = b;
    return h;
  }

  static uint16_t from_float(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return static_cast<uint16_t>(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
    if (ax < 0x38800000u) {                                               // subnormal or zero
      // Add 0.5 (as float) so the FPU does the rounding, then take the low mantissa bits.
      const float r = std::bit_cast<float>(ax) + 0.5f;
      return static_cast<uint16_t>(sign | (std::bit_cast<uint32_t>(r) - 0x3f000000u));
    }
    const uint32_t odd = (ax >> 13) & 1u;
    const uint32_t v = ax + 0xc8000fffu + odd;  // rebias exponent (-112 << 23) and round
    return static_cast<uint16_t>(sign | (v >> 13));
  }
  static float to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    const uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
      const float m = static_cast<float>(man) * (1.0f / 16777216.0f);  // man * 2^-24
      return sign ? -m : m;
    }
    return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
  }
};

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) : bits(from_float(f)) {}  // NOLINT: implicit, like a float narrowing
  operator float() const { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }
  static BFloat16 from_bits(uint16_t b) {
    BFloat16 h;
    h.bits = b;
    return h;
  }
  static uint16_t from_float(float f) {
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN
    return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
  }
};

// True for every floating-point element type the engine computes with (float, double, 16-bit).
template <typename T>
inline constexpr bool is_float_type_v =
    std::is_floating_point_v<T> || std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

}  // namespace moss

template <>
class std::numeric_limits<moss::Float16> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static moss::Float16 lowest() { return moss::Float16::from_bits(0xfbff); }
  static moss::Float16 max() { return moss::Float16::from_bits(0x7bff); }
  static moss::Float16 infinity() { return moss::Float16::from_bits(0x7c00); }
  static moss::Float16 quiet_NaN() { return moss::Float16::from_bits(0x7e00); }
};

template <>
class std::numeric_limits<moss::BFloat16> {
 public:
  static constexpr bool is_specialized = true;
  static constexpr bool has_infinity = true;
  static constexpr bool has_quiet_NaN = true;
  static moss::BFloat16 lowest() { return moss::BFloat16::from_bits(0xff7f); }
  static moss::BFloat16 max() { return moss::BFloat16::from_bits(0x7f7f); }
  static moss::BFloat16 infinity() { return moss::BFloat16::from_bits(0x7f80); }
  static moss::BFloat16 quiet_NaN() { return moss::BFloat16::from_bits(0x7fc0); }
};
