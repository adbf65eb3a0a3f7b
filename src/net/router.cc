#include "net/router.h"

#include "net/error_response.h"

namespace moss::net {

static std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 1;  // paths begin with '/'
  if (path.empty() || path[0] != '/') start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

Router& Router::add(std::string method, std::string pattern, Handler handler) {
  Route r{std::move(method), std::move(pattern), Kind::kExact, {}, std::move(handler)};
  if (r.pattern.size() >= 2 && r.pattern.ends_with("/*")) {
    r.kind = Kind::kPrefix;
    r.pattern.pop_back();  // keep the trailing '/'
  } else if (r.pattern.find('{') != std::string::npos) {
    r.kind = Kind::kParams;
    for (auto s : split_path(r.pattern)) r.segments.emplace_back(s);
  }
  routes_.push_back(std::move(r));
  return *this;
}

bool Router::matches(const Route& route, std::string_view path, Request* fill) const {
  switch (route.kind) {
    case Kind::kExact: return path == route.pattern;
    case Kind::kPrefix: return path.starts_with(route.pattern);
    case Kind::kParams: {
      auto parts = split_path(path);
      if (parts.size() != route.segments.size()) return false;
      for (size_t i = 0; i < parts.size(); ++i) {
        const std::string& seg = route.segments[i];
        bool is_param = seg.size() >= 2 && seg.front() == '{' && seg.back() == '}';
        if (is_param) {
          if (parts[i].empty()) return false;
        } else if (parts[i] != seg) {
          return false;
        }
      }
      if (fill) {
        for (size_t i = 0; i < parts.size(); ++i) {
          const std::string& seg = route.segments[i];
          if (seg.size() >= 2 && seg.front() == '{' && seg.back() == '}')
            fill->path_params[seg.substr(1, seg.size() - 2)] = percent_decode(parts[i], false);
        }
      }
      return true;
    }
  }
  return false;
}

Response Router::dispatch(Request& request) const {
  bool path_known = false;
  std::string allowed;
  for (Kind kind : {Kind::kExact, Kind::kParams, Kind::kPrefix}) {
    for (const Route& route : routes_) {
      if (route.kind != kind || !matches(route, request.path, nullptr)) continue;
      if (route.method == "*" || route.method == request.method) {
        matches(route, request.path, &request);
        return route.handler(request);
      }
      path_known = true;
      if (!allowed.empty()) allowed += ", ";
      allowed += route.method;
    }
  }
  if (path_known) {
    Response r = error_response(405, "method-not-allowed",
                                fmt::format("{} is not allowed on this path", request.method));
    r.headers.set("Allow", allowed);
    return r;
  }
  return error_response(Status(ErrorCode::kNotFound, "no such endpoint"));
}

}  // namespace moss::net
