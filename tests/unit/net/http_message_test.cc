// Value types, router, URL parsing and error mapping.
#include <gtest/gtest.h>

#include "net/error_response.h"
#include "net/http_message.h"
#include "net/request_parser.h"
#include "net/router.h"
#include "net/url.h"

namespace moss::net {
namespace {

TEST(HttpMessageTest, HeadersLookUpCaseInsensitively) {
  // Header names match regardless of case; set replaces, add appends.
  Headers h;
  h.add("Content-Type", "a");
  h.add("X-Multi", "1");
  h.add("x-multi", "2");
  EXPECT_EQ(h.get_or("content-type", ""), "a");
  EXPECT_EQ(h.get_or("X-MULTI", ""), "1");
  h.set("X-Multi", "3");
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(h.get_or("x-multi", ""), "3");
  EXPECT_FALSE(h.get("missing").has_value());
}

TEST(HttpMessageTest, QueryParametersArePercentDecoded) {
  // Query parameters decode %XX and '+'; a missing one is nullopt.
  Request r = Request::make("GET", "/v1/x?name=a%20b+c&flag&bad=%zz");
  EXPECT_EQ(r.path, "/v1/x");
  EXPECT_EQ(r.query_param("name"), "a b c");
  EXPECT_EQ(r.query_param("flag"), "");
  EXPECT_EQ(r.query_param("bad"), "%zz");
  EXPECT_FALSE(r.query_param("nope").has_value());
}

TEST(RouterTest, DispatchesExactParamAndPrefixRoutes) {
  // Exact beats parameter beats prefix; parameters are filled and decoded.
  Router router;
  router.get("/v1/models/{id}", [](const Request& r) { return Response::text(200, "model:" + std::string(r.param("id"))); });
  router.get("/v1/models/special", [](const Request&) { return Response::text(200, "exact"); });
  router.get("/static/*", [](const Request& r) { return Response::text(200, "static:" + r.path); });
  auto run = [&](std::string method, std::string target) {
    Request r = Request::make(std::move(method), std::move(target));
    return router.dispatch(r);
  };
  EXPECT_EQ(run("GET", "/v1/models/abc%2Fdef").body, "model:abc/def");
  EXPECT_EQ(run("GET", "/v1/models/special").body, "exact");
  EXPECT_EQ(run("GET", "/static/a/b.css").body, "static:/static/a/b.css");
  EXPECT_EQ(run("GET", "/v1/models/").status, 404);
  EXPECT_EQ(run("GET", "/nope").status, 404);
  Response wrong = run("DELETE", "/v1/models/abc");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.headers.get_or("Allow", ""), "GET");
}

TEST(UrlTest, ParsesHttpAndHttpsUrls) {
  // Scheme, host, port defaults, explicit ports, IPv6 and targets.
  auto a = parse_url("https://keyservice.local/v1/x?y=1").value_or_die();
  EXPECT_TRUE(a.tls());
  EXPECT_EQ(a.host, "keyservice.local");
  EXPECT_EQ(a.port, 443);
  EXPECT_EQ(a.target, "/v1/x?y=1");
  auto b = parse_url("http://127.0.0.1:8080").value_or_die();
  EXPECT_EQ(b.port, 8080);
  EXPECT_EQ(b.target, "/");
  auto c = parse_url("http://[::1]:9000/p").value_or_die();
  EXPECT_EQ(c.host, "::1");
  EXPECT_EQ(c.port, 9000);
}

TEST(UrlTest, RejectsBadUrls) {
  // Unknown schemes, bad ports, user-info, empty hosts and spaces are refused.
  for (const char* bad : {"ftp://x", "http://x:0", "http://x:70000", "http://u@x", "http://:80", "http://a b",
                          "127.0.0.1:80", "http://x:8o"}) {
    EXPECT_FALSE(parse_url(bad).ok()) << bad;
  }
}

TEST(ErrorResponseTest, MapsErrorCodesToHttpStatuses) {
  // Each ErrorCode maps to its HTTP status and the JSON body round-trips to the same Status.
  EXPECT_EQ(http_status_for(ErrorCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status_for(ErrorCode::kUnauthenticated), 401);
  EXPECT_EQ(http_status_for(ErrorCode::kPermissionDenied), 403);
  EXPECT_EQ(http_status_for(ErrorCode::kNotFound), 404);
  EXPECT_EQ(http_status_for(ErrorCode::kAlreadyExists), 409);
  EXPECT_EQ(http_status_for(ErrorCode::kResourceExhausted), 429);
  EXPECT_EQ(http_status_for(ErrorCode::kInternal), 500);
  EXPECT_EQ(http_status_for(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(http_status_for(ErrorCode::kDeadlineExceeded), 504);
  Response r = error_response(permission_denied("grant missing for {}", "m1"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, R"({"error":{"code":"permission-denied","message":"grant missing for m1"}})");
  Status back = status_from_response(r);
  EXPECT_EQ(back.code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(back.message(), "grant missing for m1");
  EXPECT_EQ(error_response(resource_exhausted("big"), 413).status, 413);
  Response proxy{502, {}, "<html>bad gateway</html>"};
  EXPECT_EQ(status_from_response(proxy).code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(status_from_response(Response::text(204, "")).ok());
}

TEST(ErrorResponseTest, CarriesTheReasonAndNeverInternalText) {
  Response r = error_response(refuse(ErrorCode::kPermissionDenied, "no-grant", "no grant for m1"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body,
            R"({"error":{"code":"permission-denied","reason":"no-grant","message":"no-grant: no grant for m1"}})");
  Status back = status_from_response(r);
  EXPECT_EQ(back.code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(back.reason(), "no-grant");
  EXPECT_EQ(back.message(), "no-grant: no grant for m1");
  // Internal and data-loss failures describe this service's insides: none of it is shown.
  for (const Status& s : {internal_error("sqlite: disk I/O error at /secret/path"),
                          refuse(ErrorCode::kDataLoss, "state-row-altered", "row /secret/x")}) {
    Response i = error_response(s);
    EXPECT_EQ(i.status, 500);
    EXPECT_EQ(i.body.find("secret"), std::string::npos) << i.body;
    EXPECT_EQ(i.body.find("state-row-altered"), std::string::npos) << i.body;
    EXPECT_EQ(status_from_response(i).reason(), "internal");
    EXPECT_EQ(status_from_response(i).code(), s.code());
  }
  // A reason from a peer is kept only when it is a plain word.
  Response odd = Response::json(403, R"({"error":{"code":"permission-denied","reason":"a b\nc","message":"m"}})");
  EXPECT_EQ(status_from_response(odd).reason(), "");
}

TEST(HttpMessageTest, ParseRequestReadsWhatTheServerReads) {
  // parse_request (what the HTTP fuzz target drives) splits, limits and fails like the server.
  auto r = parse_request("POST /v1/x?a=1%202 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", 1024, 1024);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->method, "POST");
  EXPECT_EQ(r->path, "/v1/x");
  EXPECT_EQ(r->query_param("a").value_or(""), "1 2");
  EXPECT_EQ(r->headers.get_or("host", ""), "h");
  EXPECT_EQ(r->body, "abc");
  EXPECT_EQ(parse_request("GET / HTTP/1.1\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", 1024, 1024).status().code(),
            ErrorCode::kResourceExhausted);
  EXPECT_EQ(parse_request("POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 1024, 1024).status().code(),
            ErrorCode::kResourceExhausted);
  EXPECT_EQ(parse_request("GARBAGE\r\n\r\n", 1024, 1024).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_request("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", 1024, 1024).status().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace moss::net
