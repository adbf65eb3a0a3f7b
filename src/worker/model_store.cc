#include "worker/model_store.h"

#include "common/file_util.h"
#include "protocol/ids.h"
#include "net/client_pool.h"
#include "net/error_response.h"
#include "net/url.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace moss::worker {

Result<ModelFileHead> ModelStore::fetch_head(std::string_view model_id, size_t max_bytes) {
  MOSS_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, fetch(model_id));
  ModelFileHead head{std::move(bytes), 0};
  head.size = head.bytes.size();
  if (head.bytes.size() > max_bytes) head.bytes.resize(max_bytes);
  return head;
}

namespace {

class DirectoryStore : public ModelStore {
 public:
  DirectoryStore(std::filesystem::path dir, uint64_t max_bytes) : dir_(std::move(dir)), max_(max_bytes) {}

  Result<std::vector<uint8_t>> fetch(std::string_view model_id) override {
    MOSS_ASSIGN_OR_RETURN(auto path, path_for(model_id));
    auto bytes = read_file(path, max_);
    if (!bytes.ok()) return std::move(bytes).status().with_context("model store");
    return bytes;
  }
  Result<ModelFileHead> fetch_head(std::string_view model_id, size_t max_bytes) override {
    MOSS_ASSIGN_OR_RETURN(auto path, path_for(model_id));
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return unavailable("model store: cannot open {}: {}", path.string(), std::strerror(errno));
    ModelFileHead head;
    struct stat st {};
    ssize_t n = -1;
    if (fstat(fd, &st) == 0) {
      head.size = static_cast<uint64_t>(st.st_size);
      head.bytes.resize(std::min<uint64_t>(max_bytes, head.size));
      n = head.bytes.empty() ? 0 : ::pread(fd, head.bytes.data(), head.bytes.size(), 0);
    }
    const int err = errno;
    ::close(fd);
    if (n < 0) return unavailable("model store: cannot read {}: {}", path.string(), std::strerror(err));
    head.bytes.resize(static_cast<size_t>(n));
    if (head.size > max_) {
      return resource_exhausted("model store: {} is larger than the {} byte limit", path.string(), max_);
    }
    return head;
  }
  std::string describe() const override { return dir_.string(); }

 private:
  Result<std::filesystem::path> path_for(std::string_view model_id) const {
    MOSS_RETURN_IF_ERROR(protocol::validate_model_id(model_id));
    auto path = dir_ / (std::string(model_id) + ".moss");
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      if (!std::filesystem::is_directory(dir_, ec)) {
        return unavailable("model store {} is not reachable (no such directory)", dir_.string());
      }
      return not_found("model {} is not in the model store ({} missing)", model_id, path.string());
    }
    return path;
  }

  const std::filesystem::path dir_;
  const uint64_t max_;
};

class HttpStore : public ModelStore {
 public:
  HttpStore(std::string location, std::string base_path, net::ClientOptions options)
      : location_(std::move(location)), base_(std::move(base_path)), pool_(std::move(options), 4) {}

  Result<std::vector<uint8_t>> fetch(std::string_view model_id) override {
    MOSS_RETURN_IF_ERROR(protocol::validate_model_id(model_id));
    auto resp = pool_.get(base_ + "/" + std::string(model_id) + ".moss");
    if (!resp.ok()) {
      return Status(resp.status().code(), "model store " + location_ + ": " + resp.status().message());
    }
    if (resp->status == 404) return not_found("model {} is not in the model store {}", model_id, location_);
    if (resp->status != 200) {
      return unavailable("model store {} answered HTTP {} for {}", location_, resp->status, model_id);
    }
    return std::vector<uint8_t>(resp->body.begin(), resp->body.end());
  }
  std::string describe() const override { return location_; }

 private:
  const std::string location_;
  const std::string base_;  // URL path without a trailing '/'
  net::ClientPool pool_;
};

}  // namespace

Result<std::unique_ptr<ModelStore>> make_model_store(const std::string& location, uint64_t max_bytes) {
  if (location.empty()) return invalid_argument("model_store is empty");
  if (location.starts_with("http://") || location.starts_with("https://")) {
    MOSS_ASSIGN_OR_RETURN(net::Url url, net::parse_url(location));
    std::string base = url.target;
    if (auto q = base.find('?'); q != std::string::npos) base.resize(q);
    while (!base.empty() && base.back() == '/') base.pop_back();
    net::ClientOptions o;
    o.host = url.host;
    o.port = url.port;
    o.max_response_body_bytes = max_bytes;
    o.read_timeout = std::chrono::minutes(2);
    o.user_agent = "moss-worker";
    if (url.tls()) {
      net::TlsClientConfig tls;
      MOSS_ASSIGN_OR_RETURN(tls.ca_pem, read_text_file("/etc/ssl/certs/ca-certificates.crt", 8 << 20));
      MOSS_ASSIGN_OR_RETURN(o.tls, net::ClientTlsContext::create(std::move(tls)));
    }
    return std::unique_ptr<ModelStore>(new HttpStore(location, std::move(base), std::move(o)));
  }
  return std::unique_ptr<ModelStore>(new DirectoryStore(location, max_bytes));
}

}  // namespace moss::worker
