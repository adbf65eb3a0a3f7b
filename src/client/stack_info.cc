#include "client/stack_info.h"

#include "client/stack_state.h"
#include "common/file_util.h"
#include "common/strict_json.h"

#include <climits>

#include <nlohmann/json.hpp>

namespace moss::client {
namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxStackInfoFile = 1 << 20;
constexpr size_t kMaxText = 4096;        // a URL, a path, a measurement
constexpr size_t kMaxServiceGroups = 64;

Result<StackInfo> parse_stack_info(std::string_view text) {
  MOSS_ASSIGN_OR_RETURN(
      auto j, parse_json_object(text, "stack info",
                                {"supervisor_pid", "keyservice_url", "packer_url", "invoke_url", "pool",
                                 "worker_measurement", "service_groups", "state_dir", "client_config",
                                 "token_file", "log_dir"},
                                {}, 4));
  StackInfo info;
  MOSS_ASSIGN_OR_RETURN(info.supervisor_pid, integer_field(j, "supervisor_pid", 1, INT32_MAX));
  MOSS_ASSIGN_OR_RETURN(info.keyservice_url, string_field(j, "keyservice_url", kMaxText));
  MOSS_ASSIGN_OR_RETURN(info.packer_url, string_field(j, "packer_url", kMaxText));
  MOSS_ASSIGN_OR_RETURN(info.invoke_url, string_field(j, "invoke_url", kMaxText));
  MOSS_ASSIGN_OR_RETURN(info.pool, string_field(j, "pool", kMaxText));
  MOSS_ASSIGN_OR_RETURN(info.worker_measurement, string_field(j, "worker_measurement", kMaxText));
  MOSS_ASSIGN_OR_RETURN(std::string state_dir, string_field(j, "state_dir", kMaxText));
  MOSS_ASSIGN_OR_RETURN(std::string client_config, string_field(j, "client_config", kMaxText));
  MOSS_ASSIGN_OR_RETURN(std::string token_file, string_field(j, "token_file", kMaxText));
  MOSS_ASSIGN_OR_RETURN(std::string log_dir, string_field(j, "log_dir", kMaxText));
  info.state_dir = state_dir;
  info.client_config = client_config;
  info.token_file = token_file;
  info.log_dir = log_dir;
  MOSS_ASSIGN_OR_RETURN(const auto* groups, array_field(j, "service_groups", kMaxServiceGroups));
  for (const auto& g : *groups) {
    // Process group ids (sweep_service_groups skips any that is not a plausible one).
    if (!g.is_number_integer()) return invalid_argument("field 'service_groups' must hold integers");
    info.service_groups.push_back(g.get<int64_t>());
  }
  return info;
}
}  // namespace

Status write_stack_info(const fs::path& state_dir, const StackInfo& info) {
  const nlohmann::json j = {{"supervisor_pid", info.supervisor_pid},
                            {"keyservice_url", info.keyservice_url},
                            {"packer_url", info.packer_url},
                            {"invoke_url", info.invoke_url},
                            {"pool", info.pool},
                            {"worker_measurement", info.worker_measurement},
                            {"service_groups", info.service_groups},
                            {"state_dir", info.state_dir.string()},
                            {"client_config", info.client_config.string()},
                            {"token_file", info.token_file.string()},
                            {"log_dir", info.log_dir.string()}};
  return write_text_file(stack_info_file(state_dir), j.dump(2) + "\n", 0600);
}

Result<StackInfo> read_stack_info(const fs::path& state_dir) {
  const fs::path path = stack_info_file(state_dir);
  MOSS_ASSIGN_OR_RETURN(std::string text, read_text_file(path, kMaxStackInfoFile));
  auto info = parse_stack_info(text);
  // Written by `moss up` alone: anything else in it is a damaged file.
  if (!info.ok()) return data_loss("{}: {}", path.string(), info.status().message());
  return info;
}

std::string describe_stack(const StackInfo& i) {
  return "MOSS stack running (simulated TEE: a local trial, no hardware protection)\n"
         "  keyservice          " + i.keyservice_url + "\n"
         "  packer              " + i.packer_url + "   (pool '" + i.pool + "')\n"
         "  invoke URL          " + i.invoke_url + "\n"
         "  worker measurement  " + i.worker_measurement + "\n"
         "  client config       " + i.client_config.string() + "\n"
         "  operator token      " + i.token_file.string() + "\n"
         "  logs                " + i.log_dir.string() + "/\n"
         "  stop with           moss down --state-dir " + i.state_dir.string() + "\n";
}

}  // namespace moss::client
