// moss-keyservice's settings: the table (scope "keyservice": flags --listen, --state-dir, ...;
// environment MOSS_KEYSERVICE_*; file MOSS_KEYSERVICE_CONFIG or MOSS_CONFIG) and the
// KeyServerOptions they make. docs/keyservice.md lists them; docs/configuration.md the layers.
#pragma once

#include "common/config.h"
#include "keyservice/keyservice_server.h"

namespace moss::keyservice {

// The settings, with their defaults, in a scoped Config.
Result<Config> make_keyservice_config();
// Older variable that named the file (before MOSS_KEYSERVICE_CONFIG); still read.
inline constexpr char kLegacyConfigFileEnv[] = "MOSS_CONFIG";

// The server options from the effective values: host:port parsed, policies loaded, ranges checked.
// The log level is applied by the caller (keyservice.log-level).
Result<KeyServerOptions> keyservice_options_from(const Config& c);

}  // namespace moss::keyservice
