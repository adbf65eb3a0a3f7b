#include "engine/runtime/plan_snapshot.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace moss::engine {
namespace {

constexpr char kMagic[4] = {'M', 'P', 'S', '2'};
constexpr size_t kAlign = 64;
// The header: magic, graph length, the half plan's two bytes, zeros; the graph starts aligned.
constexpr size_t kHeader = 64;
constexpr size_t kHalfAt = 12;
constexpr int kMaxDepth = 32;   // nested subgraphs

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Fixed messages: they reach logs (worker/plan_cache.h), so they never quote the model's names.
Status unsupported(std::string_view what) {
  return refuse(ErrorCode::kUnimplemented, kSnapshotUnsupported, fmt::format("plan snapshot: {}", what));
}
Status malformed(std::string_view what) {
  return refuse(ErrorCode::kInvalidArgument, kSnapshotMalformed, fmt::format("plan snapshot: {}", what));
}

enum class ConstantKind : uint8_t { kNone, kBytes, kWithoutBytes };

// ---- writing ------------------------------------------------------------------------------

class Writer {
 public:
  std::vector<uint8_t> out;   // the structure
  std::vector<uint8_t> blob;  // constants' bytes, each 64-byte aligned

  void u8(uint8_t v) { out.push_back(v); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void i64(int64_t v) { put(&v, 8); }
  void f32(float v) { put(&v, 4); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  void ints(const std::vector<int>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (int x : v) i64(x);
  }
  uint64_t add_blob(std::span<const uint8_t> bytes) {
    blob.resize(align_up(blob.size()));
    const uint64_t at = blob.size();
    blob.insert(blob.end(), bytes.begin(), bytes.end());
    return at;
  }

 private:
  void put(const void* p, size_t n) {  // little-endian hosts only (x86-64, like oneDNN's layouts)
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
};

void write_type(Writer& w, const TensorType& t) {
  w.u8(static_cast<uint8_t>(t.dtype));
  w.u8(t.has_shape);
  w.u32(static_cast<uint32_t>(t.dims.size()));
  for (const Dim& d : t.dims) {
    w.i64(d.value);
    w.str(d.param);
  }
  w.u8(t.is_string);
  w.u32(static_cast<uint32_t>(t.containers.size()));
  for (Container c : t.containers) w.u8(static_cast<uint8_t>(c));
}

void write_tensor_meta(Writer& w, DType dtype, const std::vector<int64_t>& shape) {
  w.u8(static_cast<uint8_t>(dtype));
  w.u32(static_cast<uint32_t>(shape.size()));
  for (int64_t d : shape) w.i64(d);
}

Status write_graph(Writer& w, const Graph& g, const std::set<const Tensor*>& without_bytes, int depth) {
  if (depth > kMaxDepth) return unsupported("subgraphs nested too deeply");
  w.i64(g.ir_version);
  w.u32(static_cast<uint32_t>(g.opsets.size()));
  for (const auto& [domain, version] : g.opsets) {
    w.str(domain);
    w.i64(version);
  }
  w.u32(static_cast<uint32_t>(g.values.size()));
  for (const Value& v : g.values) {
    w.str(v.name);
    w.u8(v.type.has_value());
    if (v.type) write_type(w, *v.type);
    if (!v.constant) {
      w.u8(static_cast<uint8_t>(ConstantKind::kNone));
      continue;
    }
    // A stand-in (a graph read back from a snapshot) has no bytes of its own to store.
    const bool bare = v.stand_in || without_bytes.count(v.constant.get()) > 0;
    w.u8(static_cast<uint8_t>(bare ? ConstantKind::kWithoutBytes : ConstantKind::kBytes));
    write_tensor_meta(w, v.constant->dtype(), v.constant_shape());
    if (!bare) w.u64(w.add_blob(v.constant->bytes()));
  }
  w.u32(static_cast<uint32_t>(g.nodes.size()));
  for (const Node& n : g.nodes) {
    w.str(n.name);
    w.str(n.op_type);
    w.str(n.domain);
    w.i64(n.opset);
    w.ints(n.inputs);
    w.ints(n.outputs);
    w.i64(n.implicit_inputs);
    w.u32(static_cast<uint32_t>(n.attrs.size()));
    for (const auto& [key, a] : n.attrs) {
      w.str(key);
      w.u8(static_cast<uint8_t>(a.kind));
      switch (a.kind) {
        case Attribute::Kind::kFloat: w.f32(a.f); break;
        case Attribute::Kind::kInt: w.i64(a.i); break;
        case Attribute::Kind::kString: w.str(a.s); break;
        case Attribute::Kind::kTensor:
          if (a.strings_t || !a.t) return unsupported("a string tensor attribute");
          write_tensor_meta(w, a.t->dtype(), a.t->shape());
          w.u64(w.add_blob(a.t->bytes()));
          break;
        case Attribute::Kind::kFloats:
          w.u32(static_cast<uint32_t>(a.floats.size()));
          for (float f : a.floats) w.f32(f);
          break;
        case Attribute::Kind::kInts:
          w.u32(static_cast<uint32_t>(a.ints.size()));
          for (int64_t i : a.ints) w.i64(i);
          break;
        case Attribute::Kind::kStrings:
          w.u32(static_cast<uint32_t>(a.strings.size()));
          for (const std::string& s : a.strings) w.str(s);
          break;
        case Attribute::Kind::kGraph:
          if (!a.g) return unsupported("an empty graph attribute");
          MOSS_RETURN_IF_ERROR(write_graph(w, *a.g, without_bytes, depth + 1));
          break;
        case Attribute::Kind::kType:
          w.u8(a.type != nullptr);
          if (a.type) write_type(w, *a.type);
          break;
      }
    }
  }
  w.ints(g.inputs);
  w.ints(g.outputs);
  w.ints(g.captures);
  return Status::Ok();
}

// ---- reading ------------------------------------------------------------------------------

class Reader {
 public:
  Reader(std::span<const uint8_t> in, std::span<const uint8_t> blob) : in_(in), blob_(blob) {}

  bool ok() const { return ok_; }
  size_t at() const { return at_; }
  size_t left() const { return in_.size() - at_; }

  uint8_t u8() {
    uint8_t v = 0;
    get(&v, 1);
    return v;
  }
  uint32_t u32() {
    uint32_t v = 0;
    get(&v, 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    get(&v, 8);
    return v;
  }
  int64_t i64() {
    int64_t v = 0;
    get(&v, 8);
    return v;
  }
  float f32() {
    float v = 0;
    get(&v, 4);
    return v;
  }
  std::string str() {
    const uint32_t n = u32();
    if (!ok_ || n > left()) return fail(), std::string();
    std::string s(reinterpret_cast<const char*>(in_.data() + at_), n);
    at_ += n;
    return s;
  }
  // A count of items of at least `min_bytes` each (so a bad count cannot make us allocate).
  uint32_t count(size_t min_bytes) {
    const uint32_t n = u32();
    if (ok_ && static_cast<uint64_t>(n) * min_bytes > left()) fail();
    return ok_ ? n : 0;
  }
  std::vector<int> ids(size_t limit) {
    std::vector<int> v(count(8));
    for (int& x : v) {
      const int64_t i = i64();
      if (i < kNoValue || i >= static_cast<int64_t>(limit)) fail();
      x = static_cast<int>(i);
    }
    return v;
  }
  DType dtype() {
    const uint8_t d = u8();
    if (d > static_cast<uint8_t>(DType::kBool)) fail();
    return static_cast<DType>(d);
  }
  std::vector<int64_t> shape() {
    const uint32_t rank = count(8);
    if (rank > kMaxTensorRank) fail();
    std::vector<int64_t> s;
    for (uint32_t i = 0; ok_ && i < rank; ++i) s.push_back(i64());
    return s;
  }
  // The constant's bytes in the blob.
  std::shared_ptr<const Tensor> tensor(DType dtype, std::vector<int64_t> shape) {
    const uint64_t offset = u64();
    auto n = checked_numel(shape, dtype);
    if (!ok_ || !n.ok()) return fail(), nullptr;
    const uint64_t size = static_cast<uint64_t>(*n) * dtype_size(dtype);
    if (offset % kAlign != 0 || offset > blob_.size() || size > blob_.size() - offset) return fail(), nullptr;
    auto t = Tensor::from_bytes(dtype, std::move(shape), blob_.subspan(offset, size));
    if (!t.ok()) return fail(), nullptr;
    return std::make_shared<const Tensor>(std::move(t).value());
  }
  void fail() { ok_ = false; }

  // Values stored without bytes, given their stand-in once the whole graph is read.
  struct StandIn {
    Graph* graph;
    int value;
    DType dtype;
    int64_t numel;
  };
  std::vector<StandIn> stand_ins;

 private:
  void get(void* p, size_t n) {
    if (!ok_ || n > left()) return fail();
    std::memcpy(p, in_.data() + at_, n);
    at_ += n;
  }

  std::span<const uint8_t> in_, blob_;
  size_t at_ = 0;
  bool ok_ = true;
};

std::optional<TensorType> read_type(Reader& r) {
  TensorType t;
  t.dtype = r.dtype();
  t.has_shape = r.u8() != 0;
  const uint32_t dims = r.count(12);
  for (uint32_t i = 0; r.ok() && i < dims; ++i) {
    Dim d;
    d.value = r.i64();
    d.param = r.str();
    t.dims.push_back(std::move(d));
  }
  t.is_string = r.u8() != 0;
  const uint32_t containers = r.count(1);
  for (uint32_t i = 0; r.ok() && i < containers; ++i) {
    const uint8_t c = r.u8();
    if (c > static_cast<uint8_t>(Container::kOptional)) r.fail();
    t.containers.push_back(static_cast<Container>(c));
  }
  if (!r.ok()) return std::nullopt;
  return t;
}

void read_graph(Reader& r, Graph& g, int depth) {
  if (depth > kMaxDepth) return r.fail();
  g.ir_version = r.i64();
  const uint32_t opsets = r.count(12);
  for (uint32_t i = 0; r.ok() && i < opsets; ++i) {
    std::string domain = r.str();
    g.opsets[std::move(domain)] = r.i64();
  }
  const uint32_t values = r.count(6);
  g.values.reserve(values);
  for (uint32_t i = 0; r.ok() && i < values; ++i) {
    const int id = g.add_value(r.str());
    Value& v = g.values[id];
    if (r.u8() != 0) v.type = read_type(r);
    const uint8_t kind = r.u8();
    if (kind == static_cast<uint8_t>(ConstantKind::kNone)) continue;
    if (kind > static_cast<uint8_t>(ConstantKind::kWithoutBytes)) return r.fail();
    const DType dtype = r.dtype();
    std::vector<int64_t> shape = r.shape();
    if (!r.ok()) return;
    if (kind == static_cast<uint8_t>(ConstantKind::kBytes)) {
      v.constant = r.tensor(dtype, std::move(shape));
      continue;
    }
    // Stored without bytes: only its packed copy is used; give_stand_ins() sets the constant.
    auto numel = checked_numel(shape, dtype);
    if (!numel.ok()) return r.fail();
    v.stand_in = true;
    v.stand_in_shape = std::move(shape);
    r.stand_ins.push_back({&g, id, dtype, *numel});
  }
  const uint32_t nodes = r.count(40);
  g.nodes.reserve(nodes);
  for (uint32_t i = 0; r.ok() && i < nodes; ++i) {
    Node n;
    n.name = r.str();
    n.op_type = r.str();
    n.domain = r.str();
    n.opset = static_cast<int>(r.i64());
    n.inputs = r.ids(g.values.size());
    n.outputs = r.ids(g.values.size());
    const int64_t implicit = r.i64();
    if (implicit < 0 || static_cast<uint64_t>(implicit) > n.inputs.size()) return r.fail();
    n.implicit_inputs = static_cast<int>(implicit);
    const uint32_t attrs = r.count(5);
    for (uint32_t k = 0; r.ok() && k < attrs; ++k) {
      std::string key = r.str();
      Attribute a;
      const uint8_t kind = r.u8();
      if (kind > static_cast<uint8_t>(Attribute::Kind::kType)) return r.fail();
      a.kind = static_cast<Attribute::Kind>(kind);
      switch (a.kind) {
        case Attribute::Kind::kFloat: a.f = r.f32(); break;
        case Attribute::Kind::kInt: a.i = r.i64(); break;
        case Attribute::Kind::kString: a.s = r.str(); break;
        case Attribute::Kind::kTensor: {
          const DType dtype = r.dtype();
          a.t = r.tensor(dtype, r.shape());
          break;
        }
        case Attribute::Kind::kFloats: {
          const uint32_t c = r.count(4);
          for (uint32_t j = 0; r.ok() && j < c; ++j) a.floats.push_back(r.f32());
          break;
        }
        case Attribute::Kind::kInts: {
          const uint32_t c = r.count(8);
          for (uint32_t j = 0; r.ok() && j < c; ++j) a.ints.push_back(r.i64());
          break;
        }
        case Attribute::Kind::kStrings: {
          const uint32_t c = r.count(4);
          for (uint32_t j = 0; r.ok() && j < c; ++j) a.strings.push_back(r.str());
          break;
        }
        case Attribute::Kind::kGraph: {
          auto sub = std::make_shared<Graph>();
          read_graph(r, *sub, depth + 1);
          a.g = std::move(sub);
          break;
        }
        case Attribute::Kind::kType:
          if (r.u8() != 0) {
            auto t = read_type(r);
            if (t) a.type = std::make_shared<const TensorType>(std::move(*t));
          }
          break;
      }
      n.attrs.emplace(std::move(key), std::move(a));
    }
    g.nodes.push_back(std::move(n));
  }
  g.inputs = r.ids(g.values.size());
  g.outputs = r.ids(g.values.size());
  g.captures = r.ids(g.values.size());
  for (const auto* list : {&g.inputs, &g.outputs, &g.captures}) {
    for (int v : *list) {
      if (v == kNoValue) r.fail();
    }
  }
  if (r.ok()) g.index_producers();
}

}  // namespace

Result<std::shared_ptr<const PlanSnapshot>> PlanSnapshot::record(
    const Graph& g, const std::set<const Tensor*>& without_bytes,
    std::shared_ptr<const PackedWeights> weights, HalfPlan half) {
  if (!weights) return invalid_argument("plan snapshot: no packed weights");
  Writer w;
  MOSS_RETURN_IF_ERROR(write_graph(w, g, without_bytes, 0));
  auto s = std::shared_ptr<PlanSnapshot>(new PlanSnapshot());
  // graph = u64 structure length | structure | pad | blob (aligned to the graph's start).
  std::vector<uint8_t>& out = s->recorded_;
  const uint64_t len = w.out.size();
  const size_t blob_at = align_up(8 + w.out.size());
  out.assign(blob_at + w.blob.size(), 0);
  std::memcpy(out.data(), &len, 8);
  if (!w.out.empty()) std::memcpy(out.data() + 8, w.out.data(), w.out.size());
  if (!w.blob.empty()) std::memcpy(out.data() + blob_at, w.blob.data(), w.blob.size());
  s->graph_ = s->recorded_;
  s->weights_ = std::move(weights);
  s->half_ = half;
  return std::shared_ptr<const PlanSnapshot>(std::move(s));
}

std::vector<uint8_t> PlanSnapshot::serialize() const {
  const std::vector<uint8_t> packed = weights_->serialize();
  const size_t packed_at = align_up(kHeader + graph_.size());
  std::vector<uint8_t> out(packed_at + packed.size(), 0);
  std::memcpy(out.data(), kMagic, 4);
  const uint64_t len = graph_.size();
  std::memcpy(out.data() + 4, &len, 8);
  out[kHalfAt] = static_cast<uint8_t>(half_.weights);
  out[kHalfAt + 1] = static_cast<uint8_t>(half_.compute);
  if (!graph_.empty()) std::memcpy(out.data() + kHeader, graph_.data(), graph_.size());
  if (!packed.empty()) std::memcpy(out.data() + packed_at, packed.data(), packed.size());
  return out;
}

Result<std::shared_ptr<const PlanSnapshot>> PlanSnapshot::parse(std::shared_ptr<const void> storage,
                                                                std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeader || std::memcmp(bytes.data(), kMagic, 4) != 0) return malformed("bad magic");
  if (reinterpret_cast<uintptr_t>(bytes.data()) % kAlign != 0) return malformed("bytes not 64-byte aligned");
  uint64_t len = 0;
  std::memcpy(&len, bytes.data() + 4, 8);
  if (len < 8 || len > bytes.size() - kHeader) return malformed("bad graph length");
  const size_t packed_at = align_up(kHeader + len);
  if (packed_at > bytes.size()) return malformed("truncated");
  const auto weights_type = static_cast<DType>(bytes[kHalfAt]);
  if (weights_type != DType::kFloat32 && weights_type != DType::kFloat16 && weights_type != DType::kBFloat16) {
    return malformed("bad half weights type");
  }
  if (bytes[kHalfAt + 1] > static_cast<uint8_t>(HalfCompute::kBFloat16)) return malformed("bad half compute");
  auto s = std::shared_ptr<PlanSnapshot>(new PlanSnapshot());
  s->half_ = {weights_type, static_cast<HalfCompute>(bytes[kHalfAt + 1])};
  s->graph_ = bytes.subspan(kHeader, len);
  auto weights = PackedWeights::parse(storage, bytes.subspan(packed_at));
  if (!weights.ok()) return malformed("its packed weights do not parse");
  s->weights_ = std::move(weights).value();
  s->storage_ = std::move(storage);
  return std::shared_ptr<const PlanSnapshot>(std::move(s));
}

// One zero tensor per element type, as large as the largest weight of that type stored without
// bytes, stands in for all of them: a kernel hands a weight's bytes to pack(), which replays the
// stored copy without reading them, so zeros the size of every such weight (98 MB for ResNet-50,
// fresh pages faulted on each cold start) would be written for nothing. Each is still a readable
// region of its weight's size, so a kernel that did read one (a replay that fails) reads zeros,
// in bounds, and compile_snapshot() refuses the model.
bool give_stand_ins(const std::vector<Reader::StandIn>& stand_ins) {
  std::map<DType, int64_t> largest;
  for (const Reader::StandIn& s : stand_ins) largest[s.dtype] = std::max(largest[s.dtype], s.numel);
  std::map<DType, std::shared_ptr<const Tensor>> zeros;
  for (const auto& [dtype, numel] : largest) {
    auto t = Tensor::zeros(dtype, {numel});
    if (!t.ok()) return false;
    zeros[dtype] = std::make_shared<const Tensor>(std::move(t).value());
  }
  for (const Reader::StandIn& s : stand_ins) s.graph->values[s.value].constant = zeros[s.dtype];
  return true;
}

Result<Graph> PlanSnapshot::graph() const {
  uint64_t len = 0;
  if (graph_.size() < 8) return malformed("graph truncated");
  std::memcpy(&len, graph_.data(), 8);
  if (len > graph_.size() - 8) return malformed("graph structure truncated");
  const size_t blob_at = align_up(8 + len);
  if (blob_at > graph_.size()) return malformed("graph constants truncated");
  Reader r(graph_.subspan(8, len), graph_.subspan(blob_at));
  Graph g;
  read_graph(r, g, 0);
  if (!r.ok() || r.left() != 0) return malformed("the graph's structure does not read");
  if (!give_stand_ins(r.stand_ins)) return malformed("a weight stored without bytes is too large");
  if (!g.validate().ok()) return malformed("the graph is not valid");
  return g;
}

}  // namespace moss::engine
