// safetensors read and write (the Hugging Face format), on memory buffers and files.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON, then the data buffer. The JSON
// maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to
// the data buffer) and may hold "__metadata__", an object of string to string. dtypes: F32 F64
// F16 BF16 I8 I16 I32 I64 U8 U16 U32 U64 BOOL.
//
// This is also MOSS's plaintext tensor bundle: the named inputs of an inference request and the
// named outputs of its response. Input is untrusted and validated strictly: header length capped,
// JSON with no duplicate keys and no unknown fields, offsets in bounds, consistent with dtype and
// shape, and tiling the data buffer exactly (no gaps, no overlaps, nothing after it); bool bytes
// are 0 or 1. Any violation is an invalid-argument error. Stateless functions: thread-safe.
#pragma once

#include "common/status.h"
#include "common/tensor.h"
#include "common/tensor_bundle.h"

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <vector>

namespace moss {

inline constexpr size_t kMaxSafetensorsHeaderBytes = size_t{100} << 20;
// A file holds several tensors, each at most kMaxTensorBytes.
inline constexpr size_t kMaxSafetensorsFileBytes = size_t{64} << 30;

// Tensors come out in data-buffer order, which for files written by write_safetensors is the
// bundle's order. One copy: each tensor's bytes are copied once out of `bytes`.
Result<TensorBundle> read_safetensors(std::span<const uint8_t> bytes);
Result<TensorBundle> read_safetensors_file(const std::filesystem::path& path);

// Writes the tensors in bundle order, data contiguous, header padded so the data starts 8-byte
// aligned. Fails on a tensor named "__metadata__" or a name or metadata string that is not UTF-8.
Result<std::vector<uint8_t>> write_safetensors(const TensorBundle& bundle);
Status write_safetensors_file(const std::filesystem::path& path, const TensorBundle& bundle);

// "F32", "BF16", "BOOL", ...
std::string_view safetensors_dtype_name(DType dtype);
Result<DType> dtype_from_safetensors_name(std::string_view name);

}  // namespace moss
