// NumPy .npy read and write.
//
// Reads format versions 1.0, 2.0 and 3.0 with the dtypes of common/tensor.h except bfloat16
// (NumPy has none): <f2 <f4 <f8 i1 <i2 <i4 <i8 u1 <u2 <u4 <u8 b1. Big-endian data ('>') is
// byte-swapped and Fortran-ordered arrays are transposed, so the result is always a row-major
// Tensor. Files are untrusted: the header is parsed strictly (exactly the keys 'descr',
// 'fortran_order' and 'shape', bounded length) and the data must be exactly as long as the shape
// says; anything else is an invalid-argument error. Writes version 1.0 with little-endian data and
// a 64-byte aligned header, as numpy.save does. Stateless functions: thread-safe.
#pragma once

#include "common/status.h"
#include "common/tensor.h"

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace moss {

// Longest header accepted when reading (numpy itself refuses headers over 10000 bytes by default).
inline constexpr size_t kMaxNpyHeaderBytes = 64 * 1024;

Result<Tensor> read_npy(std::span<const uint8_t> bytes);
// Reads straight into the tensor (one copy of the data in memory, not two).
Result<Tensor> read_npy_file(const std::filesystem::path& path);

// Fails (unimplemented) only for bfloat16, which .npy cannot describe.
Result<std::vector<uint8_t>> write_npy(const Tensor& tensor);
// Atomic write (common/file_util.h); `mode` applies from creation (0600 for decrypted outputs: the file is never readable by others).
Status write_npy_file(const std::filesystem::path& path, const Tensor& tensor, unsigned mode = 0644);

}  // namespace moss
