#include "engine/kernels/compile_clock.h"

namespace moss::engine {

CompileClock& compile_clock() {
  thread_local CompileClock clock;
  return clock;
}

}  // namespace moss::engine
