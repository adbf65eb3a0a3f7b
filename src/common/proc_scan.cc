#include "common/proc_scan.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace moss {
namespace fs = std::filesystem;

std::optional<std::string> read_proc_file(const fs::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out(max_bytes, '\0');
  in.read(out.data(), static_cast<std::streamsize>(max_bytes));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

bool process_listens_on_loopback(pid_t pid, uint16_t port) {
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);  // header
  char want[16];
  std::snprintf(want, sizeof(want), "0100007F:%04X", port);
  std::string inode;
  while (std::getline(tcp, line)) {
    std::istringstream f(line);
    std::string sl, local, remote, state, queues, tr, retr, uid, timeout, ino;
    f >> sl >> local >> remote >> state >> queues >> tr >> retr >> uid >> timeout >> ino;
    if (local == want && state == "0A") {  // 0A: LISTEN
      inode = ino;
      break;
    }
  }
  if (inode.empty()) return false;
  const std::string target = "socket:[" + inode + "]";
  std::error_code ec;
  for (const auto& fd : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code lec;
    if (fs::read_symlink(fd.path(), lec).string() == target) return true;
  }
  return false;
}

std::optional<pid_t> process_group_of(pid_t pid) {
  auto stat = read_proc_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat) return std::nullopt;
  // pid (comm) state ppid pgrp ...: comm may hold spaces and ')', so parse after the last ')'.
  const size_t close_paren = stat->rfind(')');
  if (close_paren == std::string::npos) return std::nullopt;
  int ppid = 0, pgrp = 0;
  char state = 0;
  if (std::sscanf(stat->c_str() + close_paren + 1, " %c %d %d", &state, &ppid, &pgrp) != 3) {
    return std::nullopt;
  }
  return static_cast<pid_t>(pgrp);
}

std::vector<pid_t> processes_in_group_with_env(pid_t group, std::string_view env_entry) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.size() > 9 || name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const auto pid = static_cast<pid_t>(std::stol(name));
    if (process_group_of(pid) != group) continue;
    auto environ_text = read_proc_file(entry.path() / "environ", 1 << 20);
    if (!environ_text) continue;
    std::string_view env(*environ_text);
    for (size_t pos = 0; pos < env.size();) {
      size_t end = env.find('\0', pos);
      if (end == std::string_view::npos) end = env.size();
      if (env.substr(pos, end - pos) == env_entry) {
        out.push_back(pid);
        break;
      }
      pos = end + 1;
    }
  }
  return out;
}

}  // namespace moss
