#include "client/stack_info.h"

#include "client/stack_state.h"
#include "common/file_util.h"

#include <nlohmann/json.hpp>

namespace moss::client {
namespace fs = std::filesystem;

namespace {
constexpr size_t kMaxStackInfoFile = 1 << 20;
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
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return data_loss("{} is not a JSON object", path.string());
  StackInfo info;
  try {
    info.supervisor_pid = j.at("supervisor_pid").get<int64_t>();
    info.keyservice_url = j.at("keyservice_url").get<std::string>();
    info.packer_url = j.at("packer_url").get<std::string>();
    info.invoke_url = j.at("invoke_url").get<std::string>();
    info.pool = j.at("pool").get<std::string>();
    info.worker_measurement = j.at("worker_measurement").get<std::string>();
    info.state_dir = j.at("state_dir").get<std::string>();
    info.client_config = j.at("client_config").get<std::string>();
    info.token_file = j.at("token_file").get<std::string>();
    info.log_dir = j.at("log_dir").get<std::string>();
    info.service_groups = j.at("service_groups").get<std::vector<int64_t>>();
  } catch (const nlohmann::json::exception& e) {
    return data_loss("{}: {}", path.string(), e.what());
  }
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
