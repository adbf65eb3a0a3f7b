// Test helper: captures what the named loggers write while it lives (at `level`), to assert on
// log contents and line counts. Shared by the worker and KeyService tests (include "support/log_capture.h").
#pragma once

#include "common/logging.h"

#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace moss::test_support {

class LogCapture {
 public:
  LogCapture(const char* level, std::vector<std::string> components)
      : components_(std::move(components)), sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    log::set_level(level);
    for (const auto& c : components_) log::get(c)->sinks().push_back(sink_);
  }
  ~LogCapture() {
    for (const auto& c : components_) {
      auto& sinks = log::get(c)->sinks();
      sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
    }
    log::set_level("info");
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() {
    sink_->flush();
    return out_.str();
  }
  size_t lines() {
    std::string t = text();
    return static_cast<size_t>(std::count(t.begin(), t.end(), '\n'));
  }

 private:
  std::vector<std::string> components_;
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

}  // namespace moss::test_support
