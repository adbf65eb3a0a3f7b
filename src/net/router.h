// Router: dispatches a request to a handler by method and path.
//
// Patterns are exact paths ("/healthz"), paths with parameters ("/v1/models/{id}", one segment
// per parameter, filled into Request::path_params), or prefixes ending in "/*" ("/static/*").
// Exact routes win over parameter routes, which win over prefixes; among equals, the first added
// wins. An unknown path answers 404 and a known path with another method 405, both as JSON errors.
// Build it before the server starts; immutable afterwards (then thread-safe to dispatch).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_message.h"

namespace moss::net {

using Handler = std::function<Response(const Request&)>;

class Router {
 public:
  // `method` "*" matches any method.
  Router& add(std::string method, std::string pattern, Handler handler);
  Router& get(std::string pattern, Handler h) { return add("GET", std::move(pattern), std::move(h)); }
  Router& post(std::string pattern, Handler h) { return add("POST", std::move(pattern), std::move(h)); }
  Router& put(std::string pattern, Handler h) { return add("PUT", std::move(pattern), std::move(h)); }
  Router& del(std::string pattern, Handler h) { return add("DELETE", std::move(pattern), std::move(h)); }

  // Routes `request`, filling its path_params. Exceptions from handlers propagate (the server
  // turns them into 500).
  Response dispatch(Request& request) const;

 private:
  enum class Kind { kExact, kParams, kPrefix };
  struct Route {
    std::string method;
    std::string pattern;
    Kind kind;
    std::vector<std::string> segments;  // kParams: pattern split on '/'
    Handler handler;
  };
  bool matches(const Route& route, std::string_view path, Request* fill) const;

  std::vector<Route> routes_;
};

}  // namespace moss::net
