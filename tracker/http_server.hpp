// The HTTP front end on libevent's evhttp: /announce, /scrape, /stats, /metrics. It owns the
// listeners and the reply contract (every request gets exactly one evhttp_send_reply, possibly
// later from a completion callback); the query parsing is http_codec's and the logic the
// RequestHandler's (a lone node's service or the ring's cluster node).
#pragma once

#include <event2/http.h>

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "tracker/config.hpp"
#include "tracker/counters.hpp"
#include "tracker/stats.hpp"
#include "tracker/request_handler.hpp"

namespace ringtracker::tracker {

class HttpServer {
 public:
  using StatsProvider = std::function<StatsSnapshot()>;

  /// `service`, `counters` and `base` must outlive the server.
  HttpServer(event_base* base, const Config& cfg, RequestHandler& service, Counters& counters,
             StatsProvider stats);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds one listener (port 0 picks a free port) and returns the bound address.
  Expected<SocketAddress, std::string> listen(const SocketAddress& addr);

 private:
  static void on_request(evhttp_request* req, void* arg) noexcept;
  void handle(evhttp_request* req);
  void handle_announce(evhttp_request* req, std::string_view query, const IpAddress& socket_ip);
  void handle_scrape(evhttp_request* req, std::string_view query);
  void reply(evhttp_request* req, int code, std::string_view reason, std::string_view body,
             const char* content_type);

  evhttp* http_ = nullptr;
  RequestHandler& service_;
  Counters& counters_;
  StatsProvider stats_;
  bool keep_alive_;
  std::vector<IpNetwork> trusted_proxies_;
};

}  // namespace ringtracker::tracker
