// The packer's HTTP API (docs/packer-api.md): pools CRUD, invoke (contract C4), status.
// Every route except GET /healthz needs `Authorization: Bearer <operator token>`.
#pragma once

#include <string>

#include "net/router.h"
#include "packer/pool_manager.h"

namespace moss::packer {

// Builds the router over `pools` (which must outlive it). `token` is the operator token; it is
// compared in constant time and never logged.
net::Router make_api_router(PoolManager& pools, std::string token);

}  // namespace moss::packer
