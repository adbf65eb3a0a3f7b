// PlanSnapshot: what a compile of a static model needs to be redone without the ONNX model: the
// graph after the passes (folding, rewrites), and the weights the compile packed
// (packed_weights.h). The worker's compiled-plan cache stores it (worker/plan_cache.h), so a hit
// neither fetches nor parses the model: CompiledModel::compile_snapshot() rebuilds the kernels and
// the plan from it, replaying every packed buffer.
//
// Weights (4 KiB and more) that the compile handed to pack() unchanged, and that nothing else
// reads, are stored without their bytes (only type and shape): the packed copy is all the plan
// uses of them, and storing both would double the entry. graph() gives them stand-ins
// (Value::stand_in): one zero tensor per element type, as large as the largest of them, shared
// by all (zeros of each one's own size would be a pass over that much fresh memory, 98 MB for
// ResNet-50, for bytes nobody reads), dropped again once the plan is built. The plan is
// accepted only if every pack() replays and no stand-in is left in the graph (a kernel asked to
// pack one afresh would pack zeros: that compile fails instead). The other constants are copied
// out of the snapshot's bytes.
//
//   "MPS2" | u64 graph_len | u8 half weights (DType) | u8 half compute (HalfCompute) | pad to 64
//   | graph | pad to 64 | PackedWeights::serialize()
//   graph = the structure (values, nodes, attributes, subgraphs) | pad to 64 | constants' bytes
// The half plan (half_precision.h) is recorded because the graph no longer shows it (the pass
// retyped it to float32) and the kernels pack by it: a rebuild takes it, and refuses a snapshot
// whose half compute differs from what this CPU and the options grant.
// Integers little-endian. The bytes come from an authenticated cache entry (written by a worker
// holding the model key); every length and index is still checked.
#pragma once

#include "common/status.h"
#include "engine/graph/graph.h"
#include "engine/quant/half_precision.h"
#include "engine/runtime/packed_weights.h"

#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <vector>

namespace moss::engine {

// Reasons (Status::reason()) of a snapshot that is not recorded or not used. Messages are fixed
// text: the model's names never reach them.
inline constexpr char kSnapshotUnsupported[] = "snapshot-unsupported";  // the format cannot hold it
inline constexpr char kSnapshotMalformed[] = "snapshot-malformed";      // the bytes do not read
inline constexpr char kSnapshotDoesNotReplay[] = "snapshot-does-not-replay";
inline constexpr char kSnapshotHalfComputeDiffers[] = "snapshot-half-compute-differs";

class PlanSnapshot {
 public:
  // Recording: `g` serialised with the constants in `without_bytes` stored as type and shape;
  // unimplemented (kSnapshotUnsupported) for what the format does not hold (string tensor
  // attributes). parse() and graph() refuse damaged bytes with kSnapshotMalformed.
  static Result<std::shared_ptr<const PlanSnapshot>> record(
      const Graph& g, const std::set<const Tensor*>& without_bytes,
      std::shared_ptr<const PackedWeights> weights, HalfPlan half = {});

  std::vector<uint8_t> serialize() const;
  // `bytes` (64-byte aligned, kept alive by `storage`: the packed weights are read in place) as
  // serialize() wrote them. The graph is read by graph(), at compile.
  static Result<std::shared_ptr<const PlanSnapshot>> parse(std::shared_ptr<const void> storage,
                                                           std::span<const uint8_t> bytes);

  // A fresh graph each call (compile consumes one).
  Result<Graph> graph() const;
  const std::shared_ptr<const PackedWeights>& weights() const { return weights_; }
  // How the compile held and computed a half model's weights (CompiledModel::half_plan()).
  const HalfPlan& half() const { return half_; }
  size_t graph_bytes() const { return graph_.size(); }

 private:
  std::shared_ptr<const void> storage_;  // parse: keeps graph_ and the weights' bytes alive
  std::vector<uint8_t> recorded_;        // record: the serialised graph
  std::span<const uint8_t> graph_;
  std::shared_ptr<const PackedWeights> weights_;
  HalfPlan half_;
};

}  // namespace moss::engine
