// Placeholder until its part lands.
#include "apps/moss/command.h"

namespace moss::cli {
void register_identity_commands(CLI::App& root) {}
}  // namespace moss::cli
