// Ports on 127.0.0.1: finding a free one for a child service, and checking that one accepts.
// Stateless: thread-safe.
#pragma once

#include "common/status.h"

#include <cstdint>

namespace moss {

// A port the kernel just gave out on 127.0.0.1 and released, for a child to bind right after.
// Another process could take it in between: callers check that their child got it (proc_scan.h).
Result<uint16_t> free_loopback_port();

// True when something accepts TCP connections on 127.0.0.1:`port` now.
bool loopback_port_accepts(uint16_t port);

}  // namespace moss
