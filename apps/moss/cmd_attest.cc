// Placeholder until its part lands.
#include "apps/moss/command.h"

namespace moss::cli {
void register_attest_commands(CLI::App& root) {}
}  // namespace moss::cli
