// The HTTP/1.x front end: /announce, /scrape, /stats, /metrics, straight on the libevent loop
// (non-blocking listeners, one `event` per connection, a fixed head buffer per connection, one
// send per answer). It owns sockets, connection lifetimes and the reply contract (every request
// read gets exactly one answer, possibly later from a completion callback, dropped safely if the
// client or the server is gone). Head parsing is http_request_reader's, query parsing
// http_codec's, the logic the RequestHandler's (a lone node's service or the ring's cluster node).
//
// Why not evhttp: measured with bench/compare.sh, evhttp spent most of a short connection's CPU
// in its own allocations (bufferevent, connection, request, header lists) and in epoll_ctl add/
// del pairs, and answered 0.6x opentracker's requests per CPU-second without keep-alive. Here a
// connection accepted with TCP_DEFER_ACCEPT usually has its request already queued: it is read,
// answered and closed in accept4 + read + send + close, with no epoll registration and no
// allocation (connection objects and their buffers are pooled).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "tracker/config.hpp"
#include "tracker/counters.hpp"
#include "tracker/request_handler.hpp"
#include "tracker/stats.hpp"

struct event_base;

namespace ringtracker::tracker {

class HttpServer {
 public:
  using StatsProvider = std::function<StatsSnapshot()>;

  /// `service`, `counters` and `base` must outlive the server. Answers the handler delivers
  /// after the server is destroyed are dropped.
  HttpServer(event_base* base, const Config& cfg, RequestHandler& service, Counters& counters,
             StatsProvider stats);
  /// Closes the listeners and every open connection (pending answers are dropped).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds one listener (port 0 picks a free port) and returns the bound address.
  Expected<SocketAddress, std::string> listen(const SocketAddress& addr);

 private:
  class Core;
  // Shared so that completions can hold a weak reference and find out the server is gone.
  std::shared_ptr<Core> core_;
};

}  // namespace ringtracker::tracker
