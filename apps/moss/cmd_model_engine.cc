// Placeholder until its part lands.
#include "apps/moss/command.h"

namespace moss::cli {
void register_model_engine_commands(CLI::App& model) {}
}  // namespace moss::cli
