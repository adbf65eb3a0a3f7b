#include "common/npy.h"

#include "common/file_util.h"
#include "common/secret_bytes.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

namespace moss {
namespace {

static_assert(std::endian::native == std::endian::little, "tensor I/O assumes a little-endian host");

constexpr uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// Magic, two version bytes and the header length (2 bytes in version 1, 4 in versions 2 and 3).
constexpr size_t kMaxPreambleBytes = 12;

struct Preamble {
  size_t header_offset = 0;
  size_t header_len = 0;
};

struct NpyHeader {
  DType dtype = DType::kFloat32;
  bool big_endian = false;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// Needs only the first kMaxPreambleBytes (or fewer, for a truncated file, which then fails).
Result<Preamble> parse_preamble(std::span<const uint8_t> bytes) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return invalid_argument("npy: not a .npy file (bad magic)");
  }
  const uint8_t major = bytes[6], minor = bytes[7];
  if (minor != 0 || major < 1 || major > 3) {
    return invalid_argument("npy: unsupported format version {}.{}", major, minor);
  }
  Preamble p;
  if (major == 1) {
    p.header_offset = 10;
    p.header_len = bytes[8] | (size_t{bytes[9]} << 8);
  } else {
    if (bytes.size() < 12) return invalid_argument("npy: truncated header length");
    p.header_offset = 12;
    p.header_len = bytes[8] | (size_t{bytes[9]} << 8) | (size_t{bytes[10]} << 16) |
                   (size_t{bytes[11]} << 24);
  }
  if (p.header_len > kMaxNpyHeaderBytes) {
    return invalid_argument("npy: header of {} bytes exceeds the limit of {}", p.header_len,
                            kMaxNpyHeaderBytes);
  }
  return p;
}

// A strict reader for the one Python dict literal numpy writes:
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view s) : s_(s) {}

  Result<NpyHeader> parse() {
    NpyHeader h;
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_ws();
    if (!eat('{')) return error("expected '{'");
    skip_ws();
    while (!eat('}')) {
      MOSS_ASSIGN_OR_RETURN(std::string key, parse_string());
      skip_ws();
      if (!eat(':')) return error("expected ':' after key");
      skip_ws();
      if (key == "descr" && !have_descr) {
        have_descr = true;
        auto descr = parse_string();
        if (!descr.ok()) return descr.status();
        MOSS_RETURN_IF_ERROR(parse_descr(descr.value(), h));
      } else if (key == "fortran_order" && !have_fortran) {
        have_fortran = true;
        MOSS_ASSIGN_OR_RETURN(h.fortran_order, parse_bool());
      } else if (key == "shape" && !have_shape) {
        have_shape = true;
        MOSS_ASSIGN_OR_RETURN(h.shape, parse_shape());
      } else {
        return error(fmt::format("unexpected or repeated key '{}'", key));
      }
      skip_ws();
      if (eat(',')) {
        skip_ws();
      } else if (peek() != '}') {
        return error("expected ',' or '}'");
      }
    }
    if (!have_descr || !have_fortran || !have_shape) {
      return error("missing one of the keys 'descr', 'fortran_order', 'shape'");
    }
    // numpy pads with spaces and ends the header with a newline; nothing else may follow.
    if (s_.empty() || s_.back() != '\n') return error("header does not end with a newline");
    for (size_t i = pos_; i + 1 < s_.size(); ++i) {
      if (s_[i] != ' ') return error("unexpected text after the dictionary");
    }
    return h;
  }

 private:
  Status error(std::string_view what) const {
    return invalid_argument("npy: bad header at offset {}: {}", pos_, what);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void skip_ws() {
    while (peek() == ' ') ++pos_;
  }

  Result<std::string> parse_string() {
    const char quote = peek();
    if (quote != '\'' && quote != '"') return error("expected a quoted string");
    ++pos_;
    size_t end = s_.find(quote, pos_);
    if (end == std::string_view::npos) return error("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    // Real headers never need escapes; refusing them keeps the parser trivially correct.
    if (out.find('\\') != std::string::npos) return error("escapes are not supported");
    pos_ = end + 1;
    return out;
  }

  Result<bool> parse_bool() {
    if (s_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (s_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    return error("expected True or False");
  }

  Result<int64_t> parse_dim() {
    const char* begin = s_.data() + pos_;
    const char* end = s_.data() + s_.size();
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return error("expected a dimension");
    int64_t v = 0;
    auto [p, ec] = std::from_chars(begin, end, v);
    if (ec != std::errc()) return error("dimension out of range");
    pos_ += static_cast<size_t>(p - begin);
    eat('L');  // Python 2 era files wrote long integers as 3L.
    return v;
  }

  // (), (5,), (2, 3) or (2, 3,): a Python tuple of non-negative integers.
  Result<std::vector<int64_t>> parse_shape() {
    if (!eat('(')) return error("expected a shape tuple");
    std::vector<int64_t> shape;
    bool trailing_comma = false;
    skip_ws();
    while (!eat(')')) {
      if (shape.size() >= kMaxTensorRank) {
        return invalid_argument("npy: shape rank exceeds the limit of {}", kMaxTensorRank);
      }
      MOSS_ASSIGN_OR_RETURN(int64_t d, parse_dim());
      shape.push_back(d);
      skip_ws();
      trailing_comma = eat(',');
      skip_ws();
      if (!trailing_comma && peek() != ')') return error("expected ',' or ')' in shape");
    }
    if (shape.size() == 1 && !trailing_comma) return error("'(n)' is not a tuple; expected '(n,)'");
    return shape;
  }

  Status parse_descr(std::string_view descr, NpyHeader& h) {
    if (descr.size() < 3) return invalid_argument("npy: unsupported dtype '{}'", descr);
    const char order = descr[0], kind = descr[1];
    std::string_view size_text = descr.substr(2);
    const DType* found = nullptr;
    static constexpr struct { char kind; std::string_view size; DType dtype; } kTypes[] = {
        {'f', "2", DType::kFloat16}, {'f', "4", DType::kFloat32}, {'f', "8", DType::kFloat64},
        {'i', "1", DType::kInt8},    {'i', "2", DType::kInt16},   {'i', "4", DType::kInt32},
        {'i', "8", DType::kInt64},   {'u', "1", DType::kUInt8},   {'u', "2", DType::kUInt16},
        {'u', "4", DType::kUInt32},  {'u', "8", DType::kUInt64},  {'b', "1", DType::kBool},
    };
    for (const auto& t : kTypes) {
      if (t.kind == kind && t.size == size_text) found = &t.dtype;
    }
    if (found == nullptr) return invalid_argument("npy: unsupported dtype '{}'", descr);
    h.dtype = *found;
    // Byte order: '<' little, '>' big, '|' not applicable (single bytes only).
    if (dtype_size(h.dtype) == 1) {
      if (order != '<' && order != '>' && order != '|') {
        return invalid_argument("npy: bad byte order in dtype '{}'", descr);
      }
    } else if (order == '<' || order == '>') {
      h.big_endian = order == '>';
    } else {
      return invalid_argument("npy: dtype '{}' needs an explicit byte order '<' or '>'", descr);
    }
    return Status::Ok();
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Result<NpyHeader> parse_header(std::span<const uint8_t> header) {
  std::string_view text(reinterpret_cast<const char*>(header.data()), header.size());
  MOSS_ASSIGN_OR_RETURN(NpyHeader h, HeaderParser(text).parse());
  return h;
}

// The data size the header promises; checked against the actual data before anything is
// allocated, so a tiny file cannot make us reserve gigabytes.
Result<uint64_t> expected_data_bytes(const NpyHeader& h) {
  auto numel = checked_numel(h.shape, h.dtype);
  if (!numel.ok()) return numel.status().with_context("npy");
  return static_cast<uint64_t>(*numel) * dtype_size(h.dtype);
}

Status data_length_mismatch(const NpyHeader& h, uint64_t expected, uint64_t actual) {
  return invalid_argument("npy: data length does not match the shape: {} {} needs {} bytes, file has {}",
                          dtype_name(h.dtype), shape_to_string(h.shape), expected, actual);
}

void byte_swap(std::span<uint8_t> data, size_t elem) {
  for (size_t i = 0; i + elem <= data.size(); i += elem) {
    std::reverse(data.begin() + static_cast<ptrdiff_t>(i),
                 data.begin() + static_cast<ptrdiff_t>(i + elem));
  }
}

// Data of a Fortran-ordered array (first index fastest) rearranged into row-major order.
Tensor transpose_from_fortran(const Tensor& src) {
  Tensor dst = Tensor::zeros(src.dtype(), src.shape()).value_or_die();
  const auto& shape = src.shape();
  const size_t rank = shape.size(), elem = dtype_size(src.dtype());
  std::vector<size_t> fstride(rank), index(rank, 0);
  size_t stride = 1;
  for (size_t k = 0; k < rank; ++k) {
    fstride[k] = stride;
    stride *= static_cast<size_t>(shape[k]);
  }
  size_t src_off = 0;
  for (int64_t n = 0; n < dst.numel(); ++n) {
    std::memcpy(dst.raw() + static_cast<size_t>(n) * elem, src.raw() + src_off * elem, elem);
    // Advance the row-major index (last axis fastest), tracking the Fortran offset.
    for (size_t k = rank; k-- > 0;) {
      if (++index[k] < static_cast<size_t>(shape[k])) {
        src_off += fstride[k];
        break;
      }
      src_off -= fstride[k] * (index[k] - 1);
      index[k] = 0;
    }
  }
  return dst;
}

// Turns the raw file data in `t` into canonical form: little-endian, row-major, bools 0 or 1.
Result<Tensor> canonicalize(Tensor t, const NpyHeader& h) {
  if (h.big_endian) byte_swap(t.bytes(), dtype_size(t.dtype()));
  if (t.dtype() == DType::kBool) {
    for (uint8_t b : t.bytes()) {
      if (b > 1) return invalid_argument("npy: bool element with value {}", b);
    }
  }
  if (h.fortran_order && t.rank() > 1) return transpose_from_fortran(t);
  return t;
}

std::string npy_descr(DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return "<f2";
    case DType::kFloat32: return "<f4";
    case DType::kFloat64: return "<f8";
    case DType::kInt8: return "|i1";
    case DType::kInt16: return "<i2";
    case DType::kInt32: return "<i4";
    case DType::kInt64: return "<i8";
    case DType::kUInt8: return "|u1";
    case DType::kUInt16: return "<u2";
    case DType::kUInt32: return "<u4";
    case DType::kUInt64: return "<u8";
    case DType::kBool: return "|b1";
    case DType::kBFloat16: return "";
  }
  return "";
}

}  // namespace

Result<Tensor> read_npy(std::span<const uint8_t> bytes) {
  MOSS_ASSIGN_OR_RETURN(Preamble p, parse_preamble(bytes));
  if (bytes.size() - p.header_offset < p.header_len) {
    return invalid_argument("npy: truncated header ({} of {} bytes)",
                            bytes.size() - p.header_offset, p.header_len);
  }
  MOSS_ASSIGN_OR_RETURN(NpyHeader h, parse_header(bytes.subspan(p.header_offset, p.header_len)));
  auto data = bytes.subspan(p.header_offset + p.header_len);
  MOSS_ASSIGN_OR_RETURN(uint64_t expected, expected_data_bytes(h));
  if (data.size() != expected) return data_length_mismatch(h, expected, data.size());
  MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::from_bytes(h.dtype, h.shape, data));
  return canonicalize(std::move(t), h);
}

Result<Tensor> read_npy_file(const std::filesystem::path& path) {
  auto fail = [&](const Status& s) { return s.with_context(fmt::format("reading {}", path.string())); };
  std::error_code ec;
  const uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (ec) return fail(not_found("{}", ec.message()));
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(not_found("cannot open file"));

  uint8_t pre[kMaxPreambleBytes];
  in.read(reinterpret_cast<char*>(pre), static_cast<std::streamsize>(sizeof(pre)));
  auto pre_len = static_cast<size_t>(in.gcount());
  auto p = parse_preamble({pre, pre_len});
  if (!p.ok()) return fail(p.status());
  if (file_size < p->header_offset + p->header_len) return fail(invalid_argument("npy: truncated header"));

  std::vector<uint8_t> header(p->header_len);
  in.clear();
  in.seekg(static_cast<std::streamoff>(p->header_offset));
  in.read(reinterpret_cast<char*>(header.data()), static_cast<std::streamsize>(header.size()));
  if (static_cast<size_t>(in.gcount()) != header.size()) return fail(data_loss("short read"));
  auto h = parse_header(header);
  if (!h.ok()) return fail(h.status());

  auto expected = expected_data_bytes(*h);
  if (!expected.ok()) return fail(expected.status());
  const uintmax_t data_size = file_size - p->header_offset - p->header_len;
  if (data_size != *expected) return fail(data_length_mismatch(*h, *expected, data_size));
  auto t = Tensor::zeros(h->dtype, h->shape);
  if (!t.ok()) return fail(t.status());
  in.read(reinterpret_cast<char*>(t->raw()), static_cast<std::streamsize>(t->nbytes()));
  // A file that shrank or grew since file_size() was taken is refused rather than half-read.
  if (static_cast<size_t>(in.gcount()) != t->nbytes() || in.peek() != std::ifstream::traits_type::eof()) {
    return fail(data_loss("file changed while being read"));
  }
  auto out = canonicalize(std::move(t).value(), *h);
  if (!out.ok()) return fail(out.status());
  return out;
}

Result<std::vector<uint8_t>> write_npy(const Tensor& tensor) {
  if (tensor.dtype() == DType::kBFloat16) {
    return unimplemented("npy: bfloat16 has no NumPy dtype; use safetensors for bfloat16 tensors");
  }
  std::string dims;
  for (int64_t d : tensor.shape()) dims += fmt::format("{}, ", d);
  if (tensor.rank() > 1) dims.resize(dims.size() - 2);  // (2, 3) but (5,) for one dimension
  if (tensor.rank() == 1) dims.pop_back();
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}",
                                   npy_descr(tensor.dtype()), dims);
  // Pad with spaces so that the data starts 64-byte aligned, then end with a newline.
  const size_t unpadded = sizeof(kMagic) + 4 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');

  std::vector<uint8_t> out;
  out.reserve(sizeof(kMagic) + 4 + header.size() + tensor.nbytes());
  out.insert(out.end(), std::begin(kMagic), std::end(kMagic));
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<uint8_t>(header.size() & 0xff));
  out.push_back(static_cast<uint8_t>(header.size() >> 8));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), tensor.bytes().begin(), tensor.bytes().end());
  return out;
}

Status write_npy_file(const std::filesystem::path& path, const Tensor& tensor, unsigned mode) {
  MOSS_ASSIGN_OR_RETURN(auto bytes, write_npy(tensor));
  Status s = write_file(path, bytes, mode);
  secure_wipe(bytes);
  return s;
}

}  // namespace moss
