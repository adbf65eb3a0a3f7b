// A bench's command line, flag by flag: `--flag value` pairs and lone switches, in order.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace moss::bench {

class CommandLine {
 public:
  CommandLine(int argc, char** argv) : argc_(argc), argv_(argv) {}
  // The next flag into `flag`; false after the last.
  bool next_flag(std::string& flag) {
    if (i_ + 1 >= argc_) return false;
    flag = argv_[++i_];
    return true;
  }
  // The value after the current flag; a missing one ends the program (exit 2), naming the flag.
  const char* value() {
    if (i_ + 1 >= argc_) {
      std::fprintf(stderr, "%s needs a value\n", argv_[i_]);
      std::exit(2);
    }
    return argv_[++i_];
  }
  // Whether a value (not another flag) follows the current flag (optional values).
  bool value_follows() const {
    return i_ + 1 < argc_ && std::string(argv_[i_ + 1]).rfind("--", 0) != 0;
  }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
};

}  // namespace moss::bench
