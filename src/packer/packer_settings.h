// moss-packer's settings: the table (scope "packer": flags --listen, --token-file, ...;
// environment MOSS_PACKER_*; file MOSS_PACKER_CONFIG) and the options they make.
// docs/packer-api.md lists them; docs/configuration.md the layers.
#pragma once

#include "common/config.h"
#include "net/server.h"
#include "packer/pool_manager.h"

#include <filesystem>

namespace moss::packer {

struct PackerOptions {
  net::ServerOptions server;         // listen address, handler threads, body limit, TLS
  std::filesystem::path token_file;  // operator token (packer/operator_token.h)
  PoolManagerOptions pools;          // state_dir
};

// The settings, with their defaults, in a scoped Config.
Result<Config> make_packer_config();

// The options from the effective values: host:port parsed, ranges checked, the TLS certificate and
// key read (both or neither).
Result<PackerOptions> packer_options_from(const Config& c);

}  // namespace moss::packer
