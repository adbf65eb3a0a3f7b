// The benches' machine-readable output: `--json PATH` writes one JSON document per run,
//   {"bench": "<program>", "format": 1, ...the bench's own fields}
// which bench/run_all.sh collects in bench/out/ and bench/plot_results.py draws. The printed text
// stays as it was (people read it); the JSON carries the same figures for programs.
#pragma once

#include "common/file_util.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>

namespace moss::bench {

// Writes `doc` with "bench" and "format" set, atomically (a reader never sees half a file).
// Reports a failure on stderr and returns false; an empty `path` (no --json) writes nothing.
inline bool write_json_output(const std::string& path, const std::string& bench,
                              nlohmann::ordered_json doc) {
  if (path.empty()) return true;
  nlohmann::ordered_json out = {{"bench", bench}, {"format", 1}};
  for (auto& [k, v] : doc.items()) out[k] = std::move(v);
  Status s = write_text_file(path, out.dump(1) + "\n", 0644);
  if (!s.ok()) {
    std::fprintf(stderr, "%s: cannot write %s: %s\n", bench.c_str(), path.c_str(),
                 s.to_string().c_str());
    return false;
  }
  std::printf("%s: wrote %s\n", bench.c_str(), path.c_str());
  return true;
}

}  // namespace moss::bench
