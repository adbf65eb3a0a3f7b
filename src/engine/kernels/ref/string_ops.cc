// String tensors (graph/object.h: StringTensor): Cast and CastLike to and from string, Constant
// of strings, Identity of strings (sequence_ops.cc), StringNormalizer, and TfIdfVectorizer over int32/int64 (a plain
// tensor kernel) or string tokens. Strings come from requests: their contents never appear in an
// error message or a log line, and every count and size is bounded by the tensor limits.
#include "engine/kernels/ref/ref_kernels.h"
#include "engine/kernels/ref/ref_util.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

namespace moss::engine::ref {
namespace {

using Objects = std::vector<ObjectPtr>;
constexpr int64_t kOnnxString = 8;  // TensorProto.STRING


Result<const StringTensor*> strings_in(const Node& node, std::span<const ObjectPtr> in, size_t i) {
  if (i >= in.size() || !in[i] || in[i]->kind != Object::Kind::kStrings) {
    return invalid_argument("{}: input {} must be a string tensor, got {}", node.label(), i,
                            i < in.size() && in[i] ? type_name(type_of(*in[i])) : "nothing");
  }
  return in[i]->strings.get();
}

// ---- Cast / CastLike to and from string ----------------------------------------------------------

// Shortest text that reads back as the same value (ONNX Runtime's form); NaN and infinities as
// ONNX Runtime writes them.
template <typename T>
std::string number_text(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "1" : "0";
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else {
    using F = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const F f = static_cast<F>(v);
    if (std::isnan(f)) return "NaN";
    if (std::isinf(f)) return f < 0 ? "-INF" : "INF";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, f);
    return std::string(buf, r.ptr);
  }
}

template <typename T>
Result<T> parse_number(const Node& node, const std::string& s, int64_t index) {
  const char* begin = s.c_str();
  char* end = nullptr;
  T v{};
  errno = 0;
  if constexpr (std::is_same_v<T, bool>) {
    const double d = std::strtod(begin, &end);
    v = d != 0;
  } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
    const long long x = std::strtoll(begin, &end, 10);
    if (x < std::numeric_limits<T>::lowest() || x > std::numeric_limits<T>::max()) errno = ERANGE;
    v = static_cast<T>(x);
  } else if constexpr (std::is_integral_v<T>) {
    const unsigned long long x = std::strtoull(begin, &end, 10);
    if (x > std::numeric_limits<T>::max()) errno = ERANGE;
    v = static_cast<T>(x);
  } else {
    v = T(static_cast<compute_t<T>>(std::strtod(begin, &end)));
    if (errno == ERANGE) errno = 0;  // overflow reads as infinity, underflow as 0, like ORT
  }
  if (end == begin || *end != '\0' || errno != 0) {
    // The text itself is request data: only its position is named.
    return invalid_argument("{}: element {} is not a number of type {}", node.label(), index,
                            dtype_name(dtype_of<T>()));
  }
  return v;
}

Result<ObjectPtr> to_strings(const Node& node, const Object& x) {
  if (x.kind == Object::Kind::kStrings) return std::make_shared<const Object>(x);
  if (!x.is_tensor()) {
    return invalid_argument("{}: input is a {}", node.label(), type_name(type_of(x)));
  }
  const Tensor& t = *x.tensor;
  StringTensor s;
  s.shape = t.shape();
  s.data.reserve(static_cast<size_t>(t.numel()));
  MOSS_RETURN_IF_ERROR(dispatch_all(node, t.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) s.data.push_back(number_text(p[i]));
    return Status::Ok();
  }));
  return strings_object(std::move(s));
}

Result<ObjectPtr> from_strings(const Node& node, const StringTensor& s, DType to) {
  MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(to, s.shape));
  MOSS_RETURN_IF_ERROR(dispatch_all(node, to, [&](auto tag) -> Status {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (size_t i = 0; i < s.data.size(); ++i) {
      MOSS_ASSIGN_OR_RETURN(p[i], parse_number<T>(node, s.data[i], static_cast<int64_t>(i)));
    }
    return Status::Ok();
  }));
  return tensor_object(std::make_shared<const Tensor>(std::move(t)));
}

// Casts x to string (to_string) or to dtype `to`; numeric to numeric is the tensor Cast's job.
Result<Objects> cast_object(const Node& node, const ObjectPtr& x, bool to_string, DType to) {
  if (!x) return invalid_argument("{}: input is missing", node.label());
  if (to_string) {
    MOSS_ASSIGN_OR_RETURN(auto o, to_strings(node, *x));
    return Objects{std::move(o)};
  }
  if (x->kind != Object::Kind::kStrings) {
    return invalid_argument("{}: casting a {} to {} is not a string cast", node.label(),
                            type_name(type_of(*x)), dtype_name(to));
  }
  MOSS_ASSIGN_OR_RETURN(auto o, from_strings(node, *x->strings, to));
  return Objects{std::move(o)};
}

bool cast_makes_strings(const Node& node) { return node.attr_int("to", 0) == kOnnxString; }

Status infer_Cast(const Node& node, std::span<const TensorInfo* const> in,
                  std::vector<TensorInfo>& out) {
  if (!node.attr("to")) return invalid_argument("{}: attribute 'to' is required", node.label());
  const int64_t to = node.attr_int("to", 0);
  if (to != kOnnxString) MOSS_RETURN_IF_ERROR(dtype_from_onnx_number(node, to).status());
  return infer_object_outputs(node, in, out);
}

Result<Objects> run_Cast(const Node& node, std::span<const ObjectPtr> in, SubgraphRunner&) {
  const int64_t to = node.attr_int("to", 0);
  if (to == kOnnxString) return cast_object(node, in.empty() ? nullptr : in[0], true, DType::kFloat32);
  MOSS_ASSIGN_OR_RETURN(DType dt, dtype_from_onnx_number(node, to));
  return cast_object(node, in.empty() ? nullptr : in[0], false, dt);
}

Result<Objects> run_CastLike(const Node& node, std::span<const ObjectPtr> in, SubgraphRunner&) {
  if (in.size() < 2 || !in[0] || !in[1]) {
    return invalid_argument("{}: needs input and target_type", node.label());
  }
  if (in[1]->kind == Object::Kind::kStrings) return cast_object(node, in[0], true, DType::kFloat32);
  if (!in[1]->is_tensor()) {
    return invalid_argument("{}: target_type is a {}", node.label(), type_name(type_of(*in[1])));
  }
  return cast_object(node, in[0], false, in[1]->tensor->dtype());
}

// ---- Constant of strings -------------------------------------------------------------------------

const Attribute* string_value(const Node& node) {
  const Attribute* a = node.attr("value");
  return a && a->strings_t ? a : nullptr;
}

bool constant_makes_strings(const Node& node) { return string_value(node) != nullptr; }

Result<Objects> run_Constant(const Node& node, std::span<const ObjectPtr>, SubgraphRunner&) {
  const Attribute* a = string_value(node);
  if (!a) return invalid_argument("{}: 'value' is not a string tensor", node.label());
  return Objects{strings_object(*a->strings_t)};
}

// ---- StringNormalizer ----------------------------------------------------------------------------
// ASCII case mapping (bytes >= 0x80, i.e. UTF-8 sequences, are kept as they are).

char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
char upper_ascii(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }
std::string lowered(std::string s) {
  for (char& c : s) c = lower_ascii(c);
  return s;
}

Result<int> case_action(const Node& node) {
  const std::string a = node.attr_string("case_change_action", "NONE");
  if (a == "NONE") return 0;
  if (a == "LOWER") return 1;
  if (a == "UPPER") return 2;
  return invalid_argument("{}: case_change_action '{}' is not NONE, LOWER or UPPER", node.label(), a);
}

Status infer_StringNormalizer(const Node& node, std::span<const TensorInfo* const> in,
                              std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(case_action(node).status());
  return infer_object_outputs(node, in, out);
}

Result<Objects> run_StringNormalizer(const Node& node, std::span<const ObjectPtr> in,
                                     SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(const StringTensor* x, strings_in(node, in, 0));
  MOSS_ASSIGN_OR_RETURN(int action, case_action(node));
  const bool sensitive = node.attr_int("is_case_sensitive", 0) != 0;
  // [C] or [1, C] (ONNX Runtime's limits).
  const bool two_d = x->shape.size() == 2;
  if (!(x->shape.size() == 1 || (two_d && x->shape[0] == 1))) {
    return invalid_argument("{}: input must be [C] or [1, C], got {}", node.label(),
                            shape_to_string(x->shape));
  }
  std::set<std::string> stop;
  if (const Attribute* a = node.attr("stopwords")) {
    for (const std::string& w : a->strings) stop.insert(sensitive ? w : lowered(w));
  }
  StringTensor y;
  for (const std::string& s : x->data) {
    if (!stop.empty() && stop.count(sensitive ? s : lowered(s))) continue;
    std::string r = s;
    if (action == 1) for (char& c : r) c = lower_ascii(c);
    if (action == 2) for (char& c : r) c = upper_ascii(c);
    y.data.push_back(std::move(r));
  }
  // Everything filtered out: one empty string, as ONNX Runtime returns.
  if (y.data.empty()) y.data.emplace_back();
  const int64_t c = static_cast<int64_t>(y.data.size());
  y.shape = two_d ? std::vector<int64_t>{1, c} : std::vector<int64_t>{c};
  return Objects{strings_object(std::move(y))};
}

// ---- TfIdfVectorizer ---------------------------------------------------------------------------
// The pool of n-grams is a trie (ONNX's reference and ONNX Runtime): walking a row from each start
// position with each skip distance counts every pooled n-gram of length [min, max] found.

struct TfIdfAttrs {
  int64_t min_n = 1, max_n = 1, max_skip = 0, size = 0;
  int mode = 0;  // 0 TF, 1 IDF, 2 TFIDF
  std::vector<float> weights;
};

template <typename K>
struct Trie {
  struct NodeT {
    std::map<K, int> next;  // index into nodes
    int64_t id = -1;        // output index when an n-gram ends here
  };
  std::vector<NodeT> nodes{1};
  void insert(std::span<const K> gram, int64_t id) {
    int at = 0;
    for (const K& k : gram) {
      auto it = nodes[static_cast<size_t>(at)].next.find(k);
      if (it == nodes[static_cast<size_t>(at)].next.end()) {
        const int n = static_cast<int>(nodes.size());
        nodes[static_cast<size_t>(at)].next.emplace(k, n);
        nodes.emplace_back();
        at = n;
      } else {
        at = it->second;
      }
    }
    nodes[static_cast<size_t>(at)].id = id;
  }
};

// Reads the attributes and builds the trie over pool (int64s or strings).
template <typename K>
Result<TfIdfAttrs> tfidf_setup(const Node& node, const std::vector<K>& pool, Trie<K>* trie) {
  TfIdfAttrs a;
  a.min_n = node.attr_int("min_gram_length", 0);
  a.max_n = node.attr_int("max_gram_length", 0);
  a.max_skip = node.attr_int("max_skip_count", 0);
  const std::string mode = node.attr_string("mode", "");
  if (mode == "TF") a.mode = 0;
  else if (mode == "IDF") a.mode = 1;
  else if (mode == "TFIDF") a.mode = 2;
  else return invalid_argument("{}: mode '{}' is not TF, IDF or TFIDF", node.label(), mode);
  if (a.min_n < 1 || a.max_n < a.min_n || a.max_skip < 0) {
    return invalid_argument("{}: gram lengths [{}, {}] or max_skip_count {} are invalid",
                            node.label(), a.min_n, a.max_n, a.max_skip);
  }
  const auto counts = node.attr_ints("ngram_counts");
  const auto indexes = node.attr_ints("ngram_indexes");
  if (const Attribute* w = node.attr("weights")) a.weights = w->floats;
  if (!a.weights.empty() && a.weights.size() != indexes.size()) {
    return invalid_argument("{}: {} weights for {} n-grams", node.label(), a.weights.size(),
                            indexes.size());
  }
  // counts[i]: where the (i+1)-grams start in the pool; their n-gram numbers continue across.
  size_t gram = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    const int64_t begin = counts[i];
    const int64_t end = i + 1 < counts.size() ? counts[i + 1] : static_cast<int64_t>(pool.size());
    const int64_t n = static_cast<int64_t>(i) + 1;
    if (begin < 0 || end < begin || end > static_cast<int64_t>(pool.size()) ||
        (end - begin) % n != 0) {
      return invalid_argument("{}: ngram_counts do not fit a pool of {}", node.label(), pool.size());
    }
    for (int64_t at = begin; at < end; at += n, ++gram) {
      if (gram >= indexes.size()) {
        return invalid_argument("{}: the pool has more n-grams than ngram_indexes", node.label());
      }
      const int64_t id = indexes[gram];
      if (id < 0 || id >= (int64_t{1} << 24)) {
        return invalid_argument("{}: ngram index {} is out of range", node.label(), id);
      }
      a.size = std::max(a.size, id + 1);
      if (trie) {
        trie->insert(std::span<const K>(pool).subspan(static_cast<size_t>(at), static_cast<size_t>(n)),
                     id);
      }
    }
  }
  if (gram != indexes.size()) {
    return invalid_argument("{}: {} ngram_indexes for {} pooled n-grams", node.label(),
                            indexes.size(), gram);
  }
  return a;
}

// One row of tokens into out[0, a.size).
template <typename K, typename Get>
void tfidf_row(const TfIdfAttrs& a, const Trie<K>& trie, int64_t len, Get get, float* out) {
  int64_t start_n = a.min_n;
  for (int64_t skip = 1; skip <= a.max_skip + 1; ++skip) {
    for (int64_t start = 0; start < len; ++start) {
      if (start + skip * (start_n - 1) >= len) break;
      int at = 0;
      int64_t item = start;
      for (int64_t n = 1; n <= a.max_n && item < len; ++n, item += skip) {
        const auto& next = trie.nodes[static_cast<size_t>(at)].next;
        auto it = next.find(get(item));
        if (it == next.end()) break;
        at = it->second;
        const int64_t id = trie.nodes[static_cast<size_t>(at)].id;
        if (n >= start_n && id >= 0) out[id] += 1;
      }
    }
    // Unigrams do not depend on the skip distance: counted once.
    if (start_n == 1) {
      start_n = 2;
      if (start_n > a.max_n) break;
    }
  }
  for (int64_t i = 0; i < a.size; ++i) {
    const float w = a.weights.empty() ? 1.0f : a.weights[static_cast<size_t>(i)];
    if (a.mode == 1) out[i] = out[i] > 0 ? w : 0;
    else if (a.mode == 2) out[i] *= w;
  }
}

Result<std::vector<int64_t>> tfidf_shape(const Node& node, std::span<const int64_t> in,
                                         int64_t size) {
  if (in.size() == 1) return std::vector<int64_t>{size};
  if (in.size() == 2) return std::vector<int64_t>{in[0], size};
  return invalid_argument("{}: input must be [C] or [N, C], got {}", node.label(),
                          shape_to_string(in));
}

Status infer_TfIdfVectorizer(const Node& node, std::span<const TensorInfo* const> in,
                             std::vector<TensorInfo>& out) {
  MOSS_RETURN_IF_ERROR(require_inputs(node, in, 1, 1));
  MOSS_RETURN_IF_ERROR(require_dtype(node, *in[0], {DType::kInt32, DType::kInt64}, "input"));
  MOSS_ASSIGN_OR_RETURN(TfIdfAttrs a, tfidf_setup<int64_t>(node, node.attr_ints("pool_int64s"),
                                                           nullptr));
  MOSS_ASSIGN_OR_RETURN(auto shape, tfidf_shape(node, in[0]->shape, a.size));
  return set_out(out, DType::kFloat32, std::move(shape));
}

Status run_TfIdfVectorizer(const Node& node, std::span<const View> in, std::span<const View> out) {
  Trie<int64_t> trie;
  MOSS_ASSIGN_OR_RETURN(TfIdfAttrs a, tfidf_setup<int64_t>(node, node.attr_ints("pool_int64s"),
                                                           &trie));
  const int64_t rows = in[0].shape.size() == 2 ? in[0].shape[0] : 1;
  const int64_t len = in[0].shape.back();
  float* y = out[0].as<float>();
  std::fill(y, y + out[0].numel, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    if (in[0].dtype == DType::kInt64) {
      const int64_t* x = in[0].as<int64_t>() + r * len;
      tfidf_row(a, trie, len, [x](int64_t i) { return x[i]; }, y + r * a.size);
    } else {
      const int32_t* x = in[0].as<int32_t>() + r * len;
      tfidf_row(a, trie, len, [x](int64_t i) { return int64_t{x[i]}; }, y + r * a.size);
    }
  }
  return Status::Ok();
}

// String tokens (pool_strings).
Result<Objects> run_TfIdfVectorizer_strings(const Node& node, std::span<const ObjectPtr> in,
                                            SubgraphRunner&) {
  MOSS_ASSIGN_OR_RETURN(const StringTensor* x, strings_in(node, in, 0));
  std::vector<std::string> pool;
  if (const Attribute* p = node.attr("pool_strings")) pool = p->strings;
  Trie<std::string> trie;
  MOSS_ASSIGN_OR_RETURN(TfIdfAttrs a, tfidf_setup<std::string>(node, pool, &trie));
  MOSS_ASSIGN_OR_RETURN(auto shape, tfidf_shape(node, x->shape, a.size));
  MOSS_ASSIGN_OR_RETURN(Tensor t, Tensor::zeros(DType::kFloat32, shape));
  const int64_t rows = x->shape.size() == 2 ? x->shape[0] : 1;
  const int64_t len = x->shape.back();
  for (int64_t r = 0; r < rows; ++r) {
    const std::string* row = x->data.data() + r * len;
    tfidf_row(a, trie, len, [row](int64_t i) -> const std::string& { return row[i]; },
              t.data<float>() + r * a.size);
  }
  return Objects{tensor_object(std::make_shared<const Tensor>(std::move(t)))};
}

}  // namespace

std::vector<OpKernel> string_kernels() {
  return {object_kernel("StringNormalizer", infer_StringNormalizer, run_StringNormalizer),
          {"TfIdfVectorizer", infer_TfIdfVectorizer, run_TfIdfVectorizer}};
}

std::vector<OpKernel> object_variant_kernels() {
  OpKernel cast = object_kernel("Cast", infer_Cast, run_Cast);
  cast.makes_objects = cast_makes_strings;
  OpKernel constant = object_kernel("Constant", infer_object_outputs, run_Constant);
  constant.makes_objects = constant_makes_strings;
  std::vector<OpKernel> ks = {identity_object_kernel(), cast, constant,
                              object_kernel("CastLike", infer_object_outputs, run_CastLike),
                              object_kernel("TfIdfVectorizer", infer_object_outputs, run_TfIdfVectorizer_strings)};
  for (OpKernel& k : string_stand_in_kernels()) ks.push_back(k);
  return ks;
}

}  // namespace moss::engine::ref
