#include "common/safetensors.h"

#include "common/file_util.h"
#include "common/strict_json.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>

namespace moss {
namespace {

static_assert(std::endian::native == std::endian::little, "tensor I/O assumes a little-endian host");

using Json = nlohmann::ordered_json;
constexpr std::string_view kMetadataKey = "__metadata__";

// One tensor entry of the header, validated but not yet copied.
struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

Result<uint64_t> read_unsigned(const Json& v, std::string_view name, std::string_view field) {
  if (!v.is_number_unsigned()) {
    return invalid_argument("safetensors: tensor '{}': {} must hold non-negative integers", name,
                            field);
  }
  return v.get<uint64_t>();
}

Result<Entry> parse_entry(const std::string& name, const Json& v, uint64_t buffer_size) {
  if (!v.is_object()) return invalid_argument("safetensors: tensor '{}' is not an object", name);
  for (const auto& [key, _] : v.items()) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return invalid_argument("safetensors: tensor '{}' has unknown field '{}'", name, key);
    }
  }
  if (!v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets")) {
    return invalid_argument("safetensors: tensor '{}' needs dtype, shape and data_offsets", name);
  }
  Entry e;
  e.name = name;
  const Json& dtype = v["dtype"];
  if (!dtype.is_string()) return invalid_argument("safetensors: tensor '{}': dtype is not a string", name);
  auto d = dtype_from_safetensors_name(dtype.get_ref<const std::string&>());
  if (!d.ok()) return d.status().with_context(fmt::format("safetensors: tensor '{}'", name));
  e.dtype = *d;

  const Json& shape = v["shape"];
  if (!shape.is_array() || shape.size() > kMaxTensorRank) {
    return invalid_argument("safetensors: tensor '{}': shape must be an array of at most {} dims",
                            name, kMaxTensorRank);
  }
  for (const auto& dim : shape) {
    MOSS_ASSIGN_OR_RETURN(uint64_t n, read_unsigned(dim, name, "shape"));
    if (n > static_cast<uint64_t>(INT64_MAX)) return invalid_argument("safetensors: tensor '{}': dimension too large", name);
    e.shape.push_back(static_cast<int64_t>(n));
  }
  auto numel = checked_numel(e.shape, e.dtype);
  if (!numel.ok()) return numel.status().with_context(fmt::format("safetensors: tensor '{}'", name));

  const Json& offsets = v["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    return invalid_argument("safetensors: tensor '{}': data_offsets must be [begin, end]", name);
  }
  MOSS_ASSIGN_OR_RETURN(e.begin, read_unsigned(offsets[0], name, "data_offsets"));
  MOSS_ASSIGN_OR_RETURN(e.end, read_unsigned(offsets[1], name, "data_offsets"));
  if (e.begin > e.end || e.end > buffer_size) {
    return invalid_argument("safetensors: tensor '{}': data_offsets [{}, {}] are reversed or outside the {}-byte data buffer",
                            name, e.begin, e.end, buffer_size);
  }
  const uint64_t expected = static_cast<uint64_t>(*numel) * dtype_size(e.dtype);
  if (e.end - e.begin != expected) {
    return invalid_argument("safetensors: tensor '{}': data_offsets span {} bytes but {} {} needs {}",
                            name, e.end - e.begin, dtype_name(e.dtype), shape_to_string(e.shape), expected);
  }
  return e;
}

Status parse_metadata(const Json& v, TensorBundle& bundle) {
  if (!v.is_object()) return invalid_argument("safetensors: __metadata__ is not an object");
  for (const auto& [key, value] : v.items()) {
    if (!value.is_string()) {
      return invalid_argument("safetensors: __metadata__ value of '{}' is not a string", key);
    }
    bundle.mutable_metadata()[key] = value.get<std::string>();
  }
  return Status::Ok();
}

// The entries, sorted by offset, must tile the buffer: the first starts at 0, each next one starts
// where the previous ended, and the last ends at the end. This rules out overlaps, gaps and
// trailing bytes at once.
Status check_tiling(std::vector<Entry>& entries, uint64_t buffer_size) {
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t next = 0;
  for (const auto& e : entries) {
    if (e.begin != next) {
      return invalid_argument("safetensors: tensor '{}' starts at {}, expected {} (overlap or gap)",
                              e.name, e.begin, next);
    }
    next = e.end;
  }
  if (next != buffer_size) {
    return invalid_argument("safetensors: tensors cover {} of the {}-byte data buffer", next, buffer_size);
  }
  return Status::Ok();
}

// The 8-byte little-endian header length, checked against the cap and the total size.
Result<uint64_t> read_header_length(std::span<const uint8_t> prefix, uint64_t total_size) {
  if (prefix.size() < 8) return invalid_argument("safetensors: file of {} bytes has no header", total_size);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | prefix[static_cast<size_t>(i)];
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return invalid_argument("safetensors: header of {} bytes exceeds the limit of {}", header_len,
                            kMaxSafetensorsHeaderBytes);
  }
  if (header_len > total_size - 8) {
    return invalid_argument("safetensors: truncated header ({} of {} bytes)", total_size - 8, header_len);
  }
  return header_len;
}

// Parses and validates the JSON header against a data buffer of `data_size` bytes; fills the
// bundle's metadata and returns the tensor entries in data order.
Result<std::vector<Entry>> parse_header(std::string_view text, uint64_t data_size, TensorBundle& bundle) {
  if (text.empty() || text.front() != '{') return invalid_argument("safetensors: header is not a JSON object");
  MOSS_ASSIGN_OR_RETURN(Json header, parse_json_strict(text, "safetensors header", 4));
  if (!header.is_object()) return invalid_argument("safetensors: header is not a JSON object");
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      MOSS_RETURN_IF_ERROR(parse_metadata(value, bundle));
      continue;
    }
    MOSS_ASSIGN_OR_RETURN(Entry e, parse_entry(name, value, data_size));
    entries.push_back(std::move(e));
  }
  MOSS_RETURN_IF_ERROR(check_tiling(entries, data_size));
  return entries;
}

// Adds a tensor after checking that a bool tensor holds only 0 and 1.
Status add_checked(TensorBundle& bundle, std::string name, Tensor t) {
  if (t.dtype() == DType::kBool) {
    for (uint8_t b : t.bytes()) {
      if (b > 1) return invalid_argument("safetensors: tensor '{}': bool element with value {}", name, b);
    }
  }
  return bundle.add(std::move(name), std::move(t));
}

}  // namespace

std::string_view safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "F32";
    case DType::kFloat64: return "F64";
    case DType::kFloat16: return "F16";
    case DType::kBFloat16: return "BF16";
    case DType::kInt8: return "I8";
    case DType::kInt16: return "I16";
    case DType::kInt32: return "I32";
    case DType::kInt64: return "I64";
    case DType::kUInt8: return "U8";
    case DType::kUInt16: return "U16";
    case DType::kUInt32: return "U32";
    case DType::kUInt64: return "U64";
    case DType::kBool: return "BOOL";
  }
  return "";
}

Result<DType> dtype_from_safetensors_name(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(DType::kBool); ++i) {
    auto d = static_cast<DType>(i);
    if (safetensors_dtype_name(d) == name) return d;
  }
  return invalid_argument("unsupported safetensors dtype '{}'", name);
}

Result<TensorBundle> read_safetensors(std::span<const uint8_t> bytes) {
  MOSS_ASSIGN_OR_RETURN(uint64_t header_len, read_header_length(bytes, bytes.size()));
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), header_len);
  const auto data = bytes.subspan(8 + header_len);
  TensorBundle bundle;
  MOSS_ASSIGN_OR_RETURN(std::vector<Entry> entries, parse_header(text, data.size(), bundle));
  for (auto& e : entries) {
    auto span = data.subspan(e.begin, e.end - e.begin);
    MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::from_bytes(e.dtype, std::move(e.shape), span));
    MOSS_RETURN_IF_ERROR(add_checked(bundle, std::move(e.name), std::move(t)));
  }
  return bundle;
}

Result<TensorBundle> read_safetensors_file(const std::filesystem::path& path) {
  auto fail = [&](const Status& s) { return s.with_context(fmt::format("reading {}", path.string())); };
  std::error_code ec;
  const uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return fail(not_found("{}", ec.message()));
  if (file_size > kMaxSafetensorsFileBytes) {
    return fail(resource_exhausted("file of {} bytes exceeds the limit of {}", file_size, kMaxSafetensorsFileBytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(not_found("cannot open file"));
  auto read_exact = [&](void* dst, size_t n) {
    in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    return static_cast<size_t>(in.gcount()) == n;
  };
  uint8_t prefix[8] = {};
  const size_t prefix_len = std::min<uintmax_t>(file_size, 8);
  if (!read_exact(prefix, prefix_len)) return fail(data_loss("short read"));
  auto header_len = read_header_length({prefix, prefix_len}, file_size);
  if (!header_len.ok()) return fail(header_len.status());
  std::string text(*header_len, '\0');
  if (!read_exact(text.data(), text.size())) return fail(data_loss("short read"));

  // The data is read straight into each tensor, in file order (the entries tile the buffer), so
  // the file's bytes are held once, not twice.
  TensorBundle bundle;
  auto entries = parse_header(text, file_size - 8 - *header_len, bundle);
  if (!entries.ok()) return fail(entries.status());
  for (auto& e : *entries) {
    auto t = Tensor::zeros(e.dtype, std::move(e.shape));
    if (!t.ok()) return fail(t.status());
    if (!read_exact(t->raw(), t->nbytes())) return fail(data_loss("file changed while being read"));
    Status s = add_checked(bundle, std::move(e.name), std::move(t).value());
    if (!s.ok()) return fail(s);
  }
  if (in.peek() != std::ifstream::traits_type::eof()) return fail(data_loss("file changed while being read"));
  return bundle;
}

Result<std::vector<uint8_t>> write_safetensors(const TensorBundle& bundle) {
  Json header = Json::object();
  if (!bundle.metadata().empty()) {
    Json meta = Json::object();
    for (const auto& [k, v] : bundle.metadata()) meta[k] = v;
    header[std::string(kMetadataKey)] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : bundle.tensors()) {
    if (name == kMetadataKey) return invalid_argument("safetensors: a tensor may not be named '{}'", name);
    header[name] = {{"dtype", safetensors_dtype_name(t.dtype())},
                    {"shape", t.shape()},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const Json::type_error&) {
    return invalid_argument("safetensors: a tensor name or metadata string is not valid UTF-8");
  }
  // Pad with spaces (valid trailing JSON whitespace) so the data buffer starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::vector<uint8_t> out;
  out.reserve(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(n >> (8 * i)));
  out.insert(out.end(), text.begin(), text.end());
  for (const auto& nt : bundle.tensors()) {
    out.insert(out.end(), nt.tensor.bytes().begin(), nt.tensor.bytes().end());
  }
  return out;
}

Status write_safetensors_file(const std::filesystem::path& path, const TensorBundle& bundle) {
  MOSS_ASSIGN_OR_RETURN(auto bytes, write_safetensors(bundle));
  return write_file(path, bytes);
}

}  // namespace moss
