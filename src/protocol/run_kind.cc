#include "protocol/run_kind.h"

#include "common/strict_json.h"

namespace moss::protocol {

std::string_view run_kind_name(RunKind kind) {
  switch (kind) {
    case RunKind::kCold: return "cold";
    case RunKind::kSwitch: return "switch";
    case RunKind::kWarm: return "warm";
  }
  return "warm";
}

Result<RunKind> parse_run_kind(std::string_view name) {
  for (RunKind k : {RunKind::kCold, RunKind::kSwitch, RunKind::kWarm}) {
    if (name == run_kind_name(k)) return k;
  }
  return invalid_argument("run kind must be cold, switch or warm, not {}", quote_input_name(name));
}

}  // namespace moss::protocol
